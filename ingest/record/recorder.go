package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/semaphore"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// ErrClosed reports a Record, Open or Close on a recorder or stream that is
// closed.
var ErrClosed = errors.New("record: closed")

// ErrRejected reports an event Kafka refused for good (it will never be
// durable): the edge must not forward its message.
var ErrRejected = errors.New("record: event rejected")

// ErrEventTooLarge reports an event whose encoding exceeds the largest event
// the recorder accepts (Config.MaxEventBytes, and what the topic's
// max.message.bytes admits); it is not recorded and takes no sequence
// number.
var ErrEventTooLarge = errors.New("record: event too large")

// Stats is a snapshot of a recorder's counters.
type Stats struct {
	// Recorded counts events accepted.
	Recorded uint64
	// Written counts events Kafka acknowledged when first produced.
	Written uint64
	// Spooled counts events written to the local spool and fsynced.
	Spooled uint64
	// Drained counts spooled events Kafka acknowledged since start
	// (including those a previous recorder left in the spool directory).
	Drained uint64
	// Rejected counts events Kafka refused for good.
	Rejected uint64
	// Retried counts event writes attempted again after a failure, spool
	// drains included.
	Retried uint64
	// Batches counts produce requests.
	Batches uint64
	// WriteErrors counts failed produce requests.
	WriteErrors uint64
	// Failed counts events given up at Close because its context ended
	// before they were durable.
	Failed uint64
	// Buffered is the number of events recorded and not yet durable.
	Buffered int64
	// StreamsOpen is the number of streams opened and not yet closed.
	StreamsOpen int64
	// Partitions is the partition count new streams are spread over.
	Partitions int
	// Spooling reports that new events go to the spool, behind events that
	// Kafka has not taken yet.
	Spooling bool
	// SpoolBytes is the size of the spool's segment files.
	SpoolBytes int64
	// SpoolSyncs counts spool group commits: one write and one fdatasync
	// each, for all the events spooled meanwhile.
	SpoolSyncs uint64
}

// Recorder records the events of many streams into Kafka. Its methods are
// safe for concurrent use.
type Recorder struct {
	cfg Config
	log *slog.Logger
	kc  *kafkaClient
	// batchBytes and maxEvent are Config's limits capped by the topic's
	// max.message.bytes.
	batchBytes int64
	maxEvent   int
	spool      *spool // nil without Config.SpoolDir

	events, bytes *semaphore.Weighted // the buffer budget
	bufs          sync.Pool

	mu        sync.RWMutex
	closed    bool
	appenders sync.WaitGroup

	partsMu     sync.Mutex
	parts       []*partition // by id, created on first use
	partsClosed bool
	nparts      atomic.Int32 // what new streams are spread over
	senders     sync.WaitGroup

	// flushCtx ends when Close's context does: produces and waits give up.
	flushCtx context.Context
	abort    context.CancelFunc
	// bg ends when Close returns: background loops stop.
	bg     context.Context
	stopBg context.CancelFunc
	bgDone sync.WaitGroup

	m metrics

	recorded, written, retried, batches, writeErrors, failed, rejected atomic.Uint64
	buffered, streamsOpen                                              atomic.Int64
}

// item is one recorded event on its way to being durable.
type item struct {
	stream *Stream
	seq    uint64
	buf    *valueBuf
	size   int64 // value bytes plus eventOverhead
}

// New starts a recorder: it learns the topic's partitions and
// max.message.bytes (waiting up to Config.StartTimeout), opens the spool
// when Config.SpoolDir is set, and begins sending what an earlier recorder
// left there. Close it to flush its events.
func New(cfg Config) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	r := &Recorder{
		cfg:    cfg,
		log:    cfg.Logger,
		kc:     newKafkaClient(&cfg),
		events: semaphore.NewWeighted(int64(cfg.BufferEvents)),
		bytes:  semaphore.NewWeighted(cfg.BufferBytes),
	}
	r.bufs.New = func() any { return &valueBuf{b: make([]byte, 0, 512)} }
	r.flushCtx, r.abort = context.WithCancel(context.Background())
	r.bg, r.stopBg = context.WithCancel(context.Background())
	r.learnTopic()
	r.m = newMetrics()
	if cfg.SpoolDir != "" {
		sp, err := openSpool(r)
		if err != nil {
			r.kc.close()
			return nil, err
		}
		r.spool = sp
	}
	if err := r.register(cfg.Registerer); err != nil {
		if r.spool != nil {
			r.spool.unlock()
		}
		r.kc.close()
		return nil, err
	}
	r.bgDone.Add(1)
	go r.watchMetadata()
	if r.spool != nil {
		r.spool.start()
	}
	return r, nil
}

// learnTopic sets the partition count and the size limits from the topic,
// falling back to one partition and the broker default.
func (r *Recorder) learnTopic() {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.StartTimeout)
	defer cancel()
	n, err := r.kc.partitions(ctx)
	for err != nil && ctx.Err() == nil {
		r.kc.refresh()
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
		n, err = r.kc.partitions(ctx)
	}
	if err != nil {
		n = 1
		r.log.Warn("record: topic metadata unavailable; pinning new streams to partition 0 until it is known",
			"topic", r.cfg.Topic, "err", err)
	}
	r.nparts.Store(int32(n))
	mmb, err := r.kc.maxMessageBytes(ctx)
	if err != nil {
		mmb = defaultMaxMessageBytes
		r.log.Warn("record: topic max.message.bytes unavailable; assuming the broker default",
			"topic", r.cfg.Topic, "max_message_bytes", mmb, "err", err)
	}
	r.batchBytes = min(r.cfg.BatchBytes, int64(mmb-recordBatchOverhead))
	r.maxEvent = min(r.cfg.MaxEventBytes, mmb-recordBatchOverhead-eventOverhead)
}

// watchMetadata follows the topic's partition count, for new streams.
func (r *Recorder) watchMetadata() {
	defer r.bgDone.Done()
	t := time.NewTicker(r.cfg.MetadataRefresh)
	defer t.Stop()
	for {
		select {
		case <-r.bg.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(r.bg, r.cfg.MetadataRefresh)
		n, err := r.kc.partitions(ctx)
		cancel()
		if err == nil && n != int(r.nparts.Load()) {
			r.log.Info("record: topic partitions changed; new streams use them, open ones keep theirs",
				"topic", r.cfg.Topic, "partitions", n, "was", r.nparts.Load())
			r.nparts.Store(int32(n))
		}
	}
}

// Open starts a stream with a new UUIDv7 id, pins it to a partition, and
// records opened as its first event (seq 1).
func (r *Recorder) Open(ctx context.Context, opened *event.StreamOpened) (*Stream, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("record: stream id: %w", err)
	}
	p := r.partition(partitionOf(id[:], int(r.nparts.Load())))
	if p == nil {
		return nil, ErrClosed
	}
	s := &Stream{r: r, id: id, part: p}
	s.body.Opened = opened
	s.ev.Body = &s.body
	err = r.append(ctx, s)
	s.body.Opened = nil
	if err != nil {
		return nil, err
	}
	r.streamsOpen.Add(1)
	return s, nil
}

// partition returns partition id, starting its sender on first use; nil
// once Close has begun.
func (r *Recorder) partition(id int) *partition {
	r.partsMu.Lock()
	defer r.partsMu.Unlock()
	if r.partsClosed {
		return nil
	}
	if id >= len(r.parts) {
		r.parts = append(r.parts, make([]*partition, id+1-len(r.parts))...)
	}
	if r.parts[id] == nil {
		r.parts[id] = newPartition(r, id)
		r.senders.Add(1)
		go r.parts[id].run()
	}
	return r.parts[id]
}

// Stats returns a snapshot of the recorder's counters.
func (r *Recorder) Stats() Stats {
	st := Stats{
		Recorded:    r.recorded.Load(),
		Written:     r.written.Load(),
		Rejected:    r.rejected.Load(),
		Retried:     r.retried.Load(),
		Batches:     r.batches.Load(),
		WriteErrors: r.writeErrors.Load(),
		Failed:      r.failed.Load(),
		Buffered:    r.buffered.Load(),
		StreamsOpen: r.streamsOpen.Load(),
		Partitions:  int(r.nparts.Load()),
	}
	if r.spool != nil {
		st.Spooled, st.Drained = r.spool.spooled.Load(), r.spool.drained.Load()
		st.Spooling, st.SpoolBytes, st.SpoolSyncs = r.spool.spooling.Load(), r.spool.bytes.Load(), r.spool.fsyncs.Load()
	}
	return st
}

// Close stops accepting events and makes those recorded durable: produced,
// or spooled when Kafka does not take them, retrying until ctx ends. With a
// spool it then sends what the spool holds until it is empty or ctx ends;
// what remains is sent by the next recorder started on the directory.
// Without one, events not durable when ctx ends are counted as failed and
// reported in the error. Streams left open are not closed: their events so
// far are flushed.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.closed = true
	r.mu.Unlock()
	failedBefore := r.failed.Load()

	stop := context.AfterFunc(ctx, r.abort)
	defer stop()
	r.appenders.Wait() // appenders blocked on a full buffer give up on abort
	r.partsMu.Lock()
	r.partsClosed = true
	parts := r.parts
	r.partsMu.Unlock()
	for _, p := range parts {
		if p != nil {
			p.close()
		}
	}
	r.senders.Wait()
	var err error
	if r.spool != nil {
		err = r.spool.close(ctx)
	}
	r.abort()
	r.stopBg()
	r.bgDone.Wait()
	r.kc.close()
	if n := r.failed.Load() - failedBefore; n > 0 {
		return fmt.Errorf("record: close: %d events not delivered: %w", n, context.Cause(ctx))
	}
	return err
}

// append seals s.ev as the stream's next event and queues it on the
// stream's partition. The caller holds s.mu (or owns s exclusively). The
// stream's seq and chain advance only once the event is queued, so a failed
// append leaves no gap.
func (r *Recorder) append(ctx context.Context, s *Stream) error {
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return ErrClosed
	}
	r.appenders.Add(1)
	r.mu.RUnlock()
	defer r.appenders.Done()

	ev := &s.ev
	ev.StreamId = s.id[:]
	ev.Seq = s.seq + 1
	ev.EdgeId = r.cfg.EdgeID
	ev.ObservedAt = time.Now().UnixNano()
	vb := r.bufs.Get().(*valueBuf)
	val, chain, err := event.Seal(vb.b[:0], ev, s.chain)
	ev.Chain = nil
	vb.b = val
	if err != nil {
		r.putBuf(vb)
		return fmt.Errorf("record: seal: %w", err)
	}
	if len(val) > r.maxEvent {
		r.putBuf(vb)
		return fmt.Errorf("%w: %d bytes, limit %d", ErrEventTooLarge, len(val), r.maxEvent)
	}
	size := int64(len(val)) + eventOverhead
	if err := r.admit(ctx, size); err != nil {
		r.putBuf(vb)
		return err
	}
	s.part.push(item{stream: s, seq: ev.Seq, buf: vb, size: size})
	s.seq++
	s.chain = chain
	r.recorded.Add(1)
	r.buffered.Add(1)
	return nil
}

// admit takes an event of size bytes into the buffer budget, waiting for
// room until ctx ends or Close gives up.
func (r *Recorder) admit(ctx context.Context, size int64) error {
	w := min(size, r.cfg.BufferBytes)
	if r.events.TryAcquire(1) {
		if r.bytes.TryAcquire(w) {
			return nil
		}
		r.events.Release(1)
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.flushCtx, cancel)
	defer stop()
	err := r.events.Acquire(actx, 1)
	if err == nil {
		if err = r.bytes.Acquire(actx, w); err != nil {
			r.events.Release(1)
		}
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil:
		return ErrClosed
	default:
		return fmt.Errorf("record: buffer full: %w", context.Cause(ctx))
	}
}

// release returns n events of the given total size to the budget.
func (r *Recorder) release(n int, bytes int64) {
	r.events.Release(int64(n))
	r.bytes.Release(bytes)
	r.buffered.Add(-int64(n))
}

// valueBuf is a pooled record value.
type valueBuf struct{ b []byte }

// maxPooled is the largest value buffer kept for reuse.
const maxPooled = 16 << 10

func (r *Recorder) putBuf(vb *valueBuf) {
	if cap(vb.b) <= maxPooled {
		vb.b = vb.b[:0]
		r.bufs.Put(vb)
	}
}

// backoff is min·2^(attempt-1), capped at max.
func backoff(attempt int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// sleep waits d unless ctx ends first; it reports whether it slept the
// whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// signal wakes the goroutine waiting on c (capacity 1) without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
