// Package record is the edges' recorder: it gives every stream gapless
// sequence numbers and a hash chain, and produces its events to Kafka
// asynchronously, in batches, keyed by stream id so that a stream's events
// stay in order in one partition.
//
// Memory is bounded: when the buffer is full, Record blocks until there is
// room or its context ends (back-pressure); an event is never dropped. Broker
// errors are retried with backoff by a single writer goroutine that does not
// send the next batch before the current one is acknowledged, so retries
// never reorder a stream's events.
package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// DefaultTopic is the topic events are produced to unless Config.Topic says
// otherwise.
const DefaultTopic = "relaymeter.messages.v1"

// ErrClosed reports a Record, Open or Close on a recorder or stream that is
// closed.
var ErrClosed = errors.New("record: closed")

// ErrRejected reports an event Kafka refused for good (it will never be
// durable): the edge must not forward its message.
var ErrRejected = errors.New("record: event rejected")

// ErrEventTooLarge reports an event whose encoding exceeds
// Config.MaxEventBytes; it is not recorded and takes no sequence number.
var ErrEventTooLarge = errors.New("record: event too large")

// Writer is the sink the recorder produces to; *kafka.Writer satisfies it.
// WriteMessages must either deliver all messages or return an error; a
// kafka.WriteErrors return says which ones failed.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Config configures a Recorder.
type Config struct {
	// Brokers are the Kafka bootstrap addresses; required unless Writer is set.
	Brokers []string
	// Topic is the topic to produce to (default DefaultTopic).
	Topic string
	// EdgeID names this edge instance in every event; required.
	EdgeID string
	// BufferEvents bounds the events waiting to be written (default 16384);
	// one batch more may be in flight.
	BufferEvents int
	// BufferBytes bounds the bytes of events buffered or in flight (default
	// 64 MiB); an event larger than the whole budget is admitted alone.
	BufferBytes int64
	// BatchSize is the most events per produce call (default 1000).
	BatchSize int
	// BatchBytes is the most bytes per produce call, and so per partition
	// record batch (default 1 MiB, Kafka's default message.max.bytes).
	BatchBytes int64
	// BatchTimeout is how long the writer waits for a batch to fill once it
	// holds an event (default 2ms).
	BatchTimeout time.Duration
	// MaxEventBytes is the largest encoded event accepted (default
	// BatchBytes minus 1 KiB); larger ones fail with ErrEventTooLarge.
	MaxEventBytes int
	// RetryBackoffMin and RetryBackoffMax bound the exponential backoff
	// between attempts of a failed batch (defaults 50ms and 2s).
	RetryBackoffMin, RetryBackoffMax time.Duration
	// SpoolDir, when set, is where events not acknowledged by the shutdown
	// deadline are kept, to be sent first by the next recorder started on
	// the same directory; one recorder per directory at a time.
	SpoolDir string
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the recorder's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Writer, when set, replaces the Kafka writer built from Brokers.
	Writer Writer
}

func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.BufferEvents == 0 {
		c.BufferEvents = 16384
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = 64 << 20
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = 1 << 20
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = 2 * time.Millisecond
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = int(c.BatchBytes) - 1024
	}
	if c.RetryBackoffMin == 0 {
		c.RetryBackoffMin = 50 * time.Millisecond
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports whether c, with its defaults applied, is usable.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.Writer == nil && len(c.Brokers) == 0:
		return errors.New("record: config: no brokers")
	case c.EdgeID == "":
		return errors.New("record: config: no edge id")
	case c.BufferEvents < 0 || c.BatchSize < 0 || c.BufferBytes < 0 || c.BatchBytes < 0 || c.MaxEventBytes < 0:
		return errors.New("record: config: negative size")
	case c.BatchTimeout < 0 || c.RetryBackoffMin < 0 || c.RetryBackoffMax < c.RetryBackoffMin:
		return errors.New("record: config: bad durations")
	case int64(c.MaxEventBytes)+eventOverhead > c.BatchBytes:
		return fmt.Errorf("record: config: max event bytes %d does not fit batch bytes %d", c.MaxEventBytes, c.BatchBytes)
	}
	return nil
}

// Stats is a snapshot of a recorder's counters.
type Stats struct {
	// Recorded counts events accepted into the buffer.
	Recorded uint64
	// Written counts events the broker acknowledged.
	Written uint64
	// Retried counts event writes attempted again after a failure.
	Retried uint64
	// Batches counts produce calls.
	Batches uint64
	// WriteErrors counts failed produce calls.
	WriteErrors uint64
	// Failed counts events given up at Close because its context ended
	// before they were acknowledged.
	Failed uint64
	// Spooled counts events written to the spool at Close.
	Spooled uint64
	// Buffered is the number of events recorded but not yet acknowledged.
	Buffered int64
	// StreamsOpen is the number of streams opened and not yet closed.
	StreamsOpen int64
}

// Recorder records the events of many streams into Kafka. Its methods are
// safe for concurrent use.
type Recorder struct {
	cfg    Config
	log    *slog.Logger
	w      Writer
	ownW   bool
	queue  chan item
	budget *budget
	bufs   sync.Pool

	mu      sync.RWMutex
	closed  bool
	senders sync.WaitGroup

	inputDone chan struct{} // closed when no more events will be queued
	abort     chan struct{} // closed when Close's context ends
	flushCtx  context.Context
	cancel    context.CancelFunc
	done      chan struct{} // closed when the writer loop returns

	oldSpool []string // spool files found at start
	spoolOut spoolOut // written by the writer goroutine only

	recorded, written, retried, batches, writeErrors, failed, spooled atomic.Uint64
	buffered, streamsOpen                                             atomic.Int64
}

// New starts a recorder. Close it to flush its events.
func New(cfg Config) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	r := &Recorder{
		cfg:       cfg,
		log:       cfg.Logger,
		w:         cfg.Writer,
		queue:     make(chan item, cfg.BufferEvents),
		budget:    newBudget(cfg.BufferBytes),
		inputDone: make(chan struct{}),
		abort:     make(chan struct{}),
		done:      make(chan struct{}),
	}
	r.bufs.New = func() any { return &valueBuf{b: make([]byte, 0, 512)} }
	if r.w == nil {
		r.w = &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Topic:        cfg.Topic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			// One attempt: the recorder retries failed messages itself, in
			// order. A batch never splits within a partition because a
			// produce call holds at most BatchBytes and BatchSize.
			MaxAttempts: 1,
			BatchSize:   cfg.BatchSize,
			BatchBytes:  cfg.BatchBytes + 1024,
			// The recorder batches; kafka-go sends what one call hands it.
			BatchTimeout: time.Microsecond,
			WriteTimeout: 10 * time.Second,
			ReadTimeout:  10 * time.Second,
		}
		r.ownW = true
	}
	var err error
	if r.oldSpool, err = spoolFiles(cfg.SpoolDir); err != nil {
		return nil, err
	}
	if err := r.register(cfg.Registerer); err != nil {
		return nil, err
	}
	r.flushCtx, r.cancel = context.WithCancel(context.Background())
	go r.run()
	return r, nil
}

// Open starts a stream with a new UUIDv7 id and records opened as its first
// event (seq 1).
func (r *Recorder) Open(ctx context.Context, opened *event.StreamOpened) (*Stream, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("record: stream id: %w", err)
	}
	s := &Stream{r: r, id: id}
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

// Stats returns a snapshot of the recorder's counters.
func (r *Recorder) Stats() Stats {
	return Stats{
		Recorded:    r.recorded.Load(),
		Written:     r.written.Load(),
		Retried:     r.retried.Load(),
		Batches:     r.batches.Load(),
		WriteErrors: r.writeErrors.Load(),
		Failed:      r.failed.Load(),
		Spooled:     r.spooled.Load(),
		Buffered:    r.buffered.Load(),
		StreamsOpen: r.streamsOpen.Load(),
	}
}

// Close stops accepting events and writes those buffered, retrying until ctx
// ends; events still unacknowledged then go to the spool when SpoolDir is
// set, and are otherwise counted as failed and reported in the error. Streams left open are not closed: their events so far are
// flushed.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.closed = true
	r.mu.Unlock()
	failedBefore := r.failed.Load()

	stop := context.AfterFunc(ctx, func() {
		close(r.abort)
		r.cancel()
	})
	defer stop()
	r.senders.Wait() // senders blocked on a full buffer give up on abort
	close(r.inputDone)
	<-r.done
	r.cancel()
	var err error
	if r.ownW {
		if cerr := r.w.Close(); cerr != nil {
			err = fmt.Errorf("record: close writer: %w", cerr)
		}
	}
	if n := r.spooled.Load(); n > 0 {
		r.log.Warn("record: events spooled for the next start", "events", n, "dir", r.cfg.SpoolDir)
	}
	if n := r.failed.Load() - failedBefore; n > 0 {
		return fmt.Errorf("record: close: %d events not delivered: %w", n, context.Cause(ctx))
	}
	return err
}

// append seals s.ev as the stream's next event and queues it. The caller
// holds s.mu (or owns s exclusively). The stream's seq and chain advance only
// once the event is queued, so a failed append leaves no gap.
func (r *Recorder) append(ctx context.Context, s *Stream) error {
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return ErrClosed
	}
	r.senders.Add(1)
	r.mu.RUnlock()
	defer r.senders.Done()

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
	if len(val) > r.cfg.MaxEventBytes {
		r.putBuf(vb)
		return fmt.Errorf("%w: %d bytes, limit %d", ErrEventTooLarge, len(val), r.cfg.MaxEventBytes)
	}
	size := int64(len(val)) + eventOverhead
	if err := r.budget.acquire(ctx, r.abort, size); err != nil {
		r.putBuf(vb)
		return r.sendErr(ctx, err)
	}
	select {
	case r.queue <- item{key: &s.id, buf: vb, size: size, stream: s, seq: ev.Seq}:
	case <-ctx.Done():
		r.budget.release(size)
		r.putBuf(vb)
		return fmt.Errorf("record: buffer full: %w", context.Cause(ctx))
	case <-r.abort:
		r.budget.release(size)
		r.putBuf(vb)
		return ErrClosed
	}
	s.seq++
	s.chain = chain
	r.recorded.Add(1)
	r.buffered.Add(1)
	return nil
}

func (r *Recorder) sendErr(ctx context.Context, err error) error {
	if errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("record: buffer full: %w", context.Cause(ctx))
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
