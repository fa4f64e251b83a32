package meter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
)

// partitionWorker meters one assigned partition. It owns the partition's
// stream state for as long as the assignment lasts.
type partitionWorker struct {
	m         *Meter
	partition int32
	bl        *builder
	recs      []kafka.Message

	// Narrowing down a batch Postgres refused: while the stored offset is
	// below until, batches take at most limit records; a refused batch of
	// one record is set aside (poison).
	limit  int
	until  int64
	poison *poison
}

// poison is the record at offset that Postgres refused on its own.
type poison struct {
	offset int64
	err    error
}

// commitError is a batch that failed to commit: its first record's
// offset, how many records it held, the offset after it, and why.
type commitError struct {
	first int64
	n     int
	to    int64
	err   error
}

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// runPartition meters partition until ctx ends (nil) or it stops on a
// record it must not guess about (a *PartitionError). Everything else is
// retried from the stored offset with fresh state: a batch fenced by
// another consumer or an ambiguous commit (at once), a stream another meter
// wrote meanwhile (at once), a batch Postgres refused (narrowed down until
// the record at fault is set aside), and Postgres or Kafka unreachable
// (after RetryBackoff).
func (m *Meter) runPartition(ctx context.Context, partition int32) error {
	w := &partitionWorker{m: m, partition: partition, bl: newBuilder(m, partition)}
	for {
		err := w.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var pe *PartitionError
		if errors.As(err, &pe) {
			m.log.Error("meter: partition stopped", "topic", pe.Topic, "partition", pe.Partition, "offset", pe.Offset, "err", pe.Err)
			return err
		}
		w.bl.reset()
		pause := m.cfg.RetryBackoff
		switch {
		case errors.Is(err, ledger.ErrFenced):
			m.metrics.fenced.Inc()
			m.log.Warn("meter: partition fenced (another consumer moved its offset, or a commit whose answer was lost went through); resuming from the stored offset",
				"partition", partition, "err", err)
			pause = 0
		case errors.Is(err, ledger.ErrStreamConflict):
			m.metrics.conflicts.Inc()
			m.log.Warn("meter: a stream was written by another meter; reading it again", "partition", partition, "err", err)
			pause = 0
		case w.narrow(err):
			pause = 0
		default:
			m.metrics.failures.Inc()
			m.log.Warn("meter: batch failed; retrying from the stored offset", "partition", partition, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
	}
}

// narrow reports whether err is Postgres refusing a batch's data, and if
// so narrows the next attempts down: half the records, until a batch of
// one is refused and its record is set aside.
func (w *partitionWorker) narrow(err error) bool {
	var ce *commitError
	if !errors.As(err, &ce) || !refused(ce.err) || ce.n == 0 {
		return false
	}
	m := w.m
	if ce.n == 1 {
		w.poison = &poison{offset: ce.first, err: ce.err}
		m.log.Error("meter: Postgres refuses a record on its own; setting it aside",
			"partition", w.partition, "offset", ce.first, "err", ce.err)
		return true
	}
	w.limit, w.until = (ce.n+1)/2, max(w.until, ce.to)
	m.metrics.narrowed.Inc()
	m.log.Warn("meter: Postgres refused a batch; retrying it in halves to find the record at fault",
		"partition", w.partition, "offset", ce.first, "records", ce.n, "err", ce.err)
	return true
}

// refused reports whether err is Postgres refusing the data itself (a
// data exception, a constraint, a limit), which a retry of the same batch
// cannot fix.
func refused(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || len(pg.Code) < 2 {
		return false
	}
	switch pg.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

// batchLimit is the most records the next batch may take, starting at from.
func (w *partitionWorker) batchLimit(from int64) int {
	if w.poison != nil {
		return 1
	}
	if w.limit > 0 && from < w.until {
		return w.limit
	}
	w.limit, w.until = 0, 0
	return w.m.cfg.BatchSize
}

// session reads the stored offset and the partition's open streams and
// meters from there until an error.
func (w *partitionWorker) session(ctx context.Context) error {
	m := w.m
	from, err := m.store.NextOffset(ctx, m.cfg.GroupID, m.cfg.Topic, w.partition)
	if err != nil {
		return err
	}
	if err := w.bl.preload(ctx); err != nil {
		return err
	}
	start, jump, err := w.bounds(ctx, from)
	if err != nil {
		return err
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:       m.cfg.Brokers,
		Topic:         m.cfg.Topic,
		Partition:     int(w.partition),
		MinBytes:      1,
		MaxBytes:      16 << 20,
		MaxWait:       fetchMaxWait,
		QueueCapacity: min(m.cfg.BatchSize, 10000),
		// The reader retries what goes wrong on its own; say so, or a
		// partition that cannot read looks merely idle.
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			m.log.Warn("meter: kafka reader", "partition", w.partition, "err", fmt.Sprintf(msg, args...))
		}),
	})
	// Close waits for the reader's fetch under way (up to fetchMaxWait):
	// let it finish on its own, so that a rebalance or a retry is not
	// held up by it. The reader commits nothing.
	defer func() { go r.Close() }()
	if err := r.SetOffset(start); err != nil {
		return fmt.Errorf("meter: partition %d: seek to %d: %w", w.partition, start, err)
	}
	m.log.Info("meter: partition assigned", "partition", w.partition, "offset", from, "open_streams", len(w.bl.streams))
	// Batch k+1 is fetched and built while batch k commits; batches commit
	// one at a time, in order, each moving the offset from where the one
	// before it ended.
	var inflight chan error // the commit of prev, when one is under way
	var prev *pending
	settle := func() error {
		if inflight == nil {
			return nil
		}
		err := <-inflight
		inflight = nil
		if err == nil {
			w.bl.committed(prev)
		}
		prev = nil
		return err
	}
	defer settle()
	swept, ticked := time.Now(), time.Time{}
	for {
		recs, err := w.fetch(ctx, r, w.batchLimit(from))
		if err != nil {
			return fmt.Errorf("meter: partition %d: fetch: %w", w.partition, err)
		}
		if len(recs) == 0 {
			// Caught up with the log: the partition's clock is the wall
			// clock now, for closing streams whose edge went away.
			w.bl.now = maxTime(w.bl.now, time.Now())
		}
		p, stop, err := w.build(ctx, from, recs, jump)
		if err != nil {
			return err
		}
		jump = nil
		if err := settle(); err != nil {
			return err
		}
		from = p.b.To
		if stop != nil {
			if err := w.commit(ctx, p); err != nil {
				return err
			}
			return stop
		}
		if worthCommitting(&p.b) {
			done := make(chan error, 1)
			prev, inflight = p, done
			go func() { done <- w.store(ctx, p) }()
		}
		if len(recs) == 0 || time.Since(swept) > sweepInterval {
			swept = time.Now()
			if err := w.sweep(ctx, &from, settle); err != nil {
				return err
			}
		}
		if len(recs) == 0 && time.Since(ticked) > clockInterval {
			ticked = time.Now()
			if err := w.tick(ctx, &from, start, settle); err != nil {
				return err
			}
		}
	}
}

// clockInterval is how often an idle partition stores its clock (the wall
// clock, since it has caught up), so that windows settle while it is idle.
const clockInterval = 2 * time.Second

// tick stores the partition's clock with its offset unmoved; a partition
// with no stored offset gets one at start, where it reads from.
func (w *partitionWorker) tick(ctx context.Context, from *int64, start int64, settle func() error) error {
	if err := settle(); err != nil {
		return err
	}
	m := w.m
	if err := m.store.TickClock(ctx, m.cfg.GroupID, m.cfg.Topic, w.partition, *from, start, w.bl.now); err != nil {
		return err
	}
	if *from == ledger.NoOffset {
		*from = start
	}
	return nil
}

// sweepInterval is how often a busy partition looks for abandoned streams;
// an idle one looks each time a fetch finds nothing.
const sweepInterval = 10 * time.Second

// sweep commits, in a batch of its own, the close of the streams the
// partition's clock says are abandoned.
func (w *partitionWorker) sweep(ctx context.Context, from *int64, settle func() error) error {
	if err := settle(); err != nil {
		return err
	}
	if *from == ledger.NoOffset {
		return nil // nothing metered yet, nothing to close
	}
	w.bl.begin(*from)
	if !w.bl.sweep() {
		return nil
	}
	w.bl.finish()
	return w.commit(ctx, w.bl.cur)
}

// bounds checks the stored offset from against the partition's log and
// returns where to read. A stored offset beyond the log's end (the topic
// was recreated, or lost data) or before its start (retention deleted
// records never metered) is a finding, and metering resumes from the
// log's start: nothing is skipped silently, and duplicates of what was
// metered are dropped by (stream, seq).
func (w *partitionWorker) bounds(ctx context.Context, from int64) (start int64, jump *ledger.Finding, err error) {
	m := w.m
	client := &kafka.Client{Addr: kafka.TCP(m.cfg.Brokers...), Timeout: 10 * time.Second}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		m.cfg.Topic: {kafka.FirstOffsetOf(int(w.partition)), kafka.LastOffsetOf(int(w.partition))}}})
	if err != nil {
		return 0, nil, fmt.Errorf("meter: partition %d: list offsets: %w", w.partition, err)
	}
	var first, last int64 = -1, -1
	for _, po := range res.Topics[m.cfg.Topic] {
		if po.Partition == int(w.partition) {
			if po.Error != nil {
				return 0, nil, fmt.Errorf("meter: partition %d: list offsets: %w", w.partition, po.Error)
			}
			first, last = po.FirstOffset, po.LastOffset
		}
	}
	if first < 0 || last < 0 {
		return 0, nil, fmt.Errorf("meter: partition %d: list offsets: no answer for the partition", w.partition)
	}
	f := ledger.Finding{Topic: some(m.cfg.Topic), Partition: some(w.partition), Offset: some(from)}
	switch {
	case from == ledger.NoOffset:
		return first, nil, nil
	case from > last:
		f.Kind = FindingOffsetAhead
		f.Detail = fmt.Sprintf("stored next offset %d is beyond the log's end %d (log start %d): the topic was recreated or lost data; metering again from offset %d, duplicates dropped",
			from, last, first, first)
	case from < first:
		f.Kind = FindingOffsetBehind
		f.Detail = fmt.Sprintf("records from offset %d to %d were deleted before they were metered (log start %d); metering from offset %d",
			from, first-1, first, first)
	default:
		return from, nil, nil
	}
	m.log.Error("meter: stored offset outside the log", "partition", w.partition, "stored", from, "log_start", first, "log_end", last)
	f.Offset = some(first)
	return first, &f, nil
}

// fetch returns the next records: as many as arrive within BatchWait of
// the first, up to limit; none when no record arrived within idleWait.
func (w *partitionWorker) fetch(ctx context.Context, r *kafka.Reader, limit int) ([]kafka.Message, error) {
	recs := w.recs[:0]
	fctx, cancel := context.WithTimeout(ctx, idleWait)
	first, err := r.FetchMessage(fctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && fctx.Err() != nil {
			return recs, nil
		}
		return nil, err
	}
	recs = append(recs, first)
	wctx, cancel := context.WithTimeout(ctx, w.m.cfg.BatchWait)
	defer cancel()
	for len(recs) < limit {
		msg, err := r.FetchMessage(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if wctx.Err() != nil {
				break
			}
			return nil, err
		}
		recs = append(recs, msg)
	}
	w.recs = recs
	return recs, nil
}

// fetchMaxWait is how long the broker may hold a fetch that finds no
// record, and so (kafka-go sets the connection's deadline from it) how long
// the answer to any fetch may take to arrive. It must be far longer than
// a fetch of MaxBytes takes on a loaded broker or link: a deadline shorter
// than that fails the same fetch on every retry, and the partition stops
// for good while it looks idle. Batches are bounded by BatchWait in fetch,
// not by this.
const fetchMaxWait = 2 * time.Second

// idleWait is how long a fetch waits for a first record before the
// partition counts as caught up.
const idleWait = time.Second

// build meters recs, starting at offset from, into the next batch; jump,
// when set, is a finding that moves the offset from where it was stored to
// the log's start first. A record of an unknown schema major ends the
// batch before it and is returned as a *PartitionError.
func (w *partitionWorker) build(ctx context.Context, from int64, recs []kafka.Message, jump *ledger.Finding) (*pending, *PartitionError, error) {
	m, bl := w.m, w.bl
	bl.begin(from)
	if jump != nil {
		bl.finding(*jump)
		bl.b.To = jump.Offset.V
	}
	if err := bl.load(ctx, recs); err != nil {
		return nil, nil, err
	}
	p := bl.cur
	var stop *PartitionError
	p.n = len(recs)
	if len(recs) > 0 {
		p.first = recs[0].Offset
	}
	for i := range recs {
		if w.poison != nil && recs[i].Offset == w.poison.offset {
			// Set aside once; should this batch fail too, narrowing
			// finds the record again.
			bl.quarantine(&recs[i], "Postgres refused the record: "+w.poison.err.Error())
			w.poison = nil
			continue
		}
		if err := bl.add(ctx, &recs[i]); err != nil {
			if errors.Is(err, event.ErrUnknownMajor) {
				stop = &PartitionError{Topic: m.cfg.Topic, Partition: int(w.partition), Offset: recs[i].Offset, Err: err}
				p.n = i
				break
			}
			return nil, nil, err
		}
	}
	if worthCommitting(&p.b) {
		bl.finish()
	}
	return p, stop, nil
}

// commit writes p, when it changes anything, and makes it the committed
// state.
func (w *partitionWorker) commit(ctx context.Context, p *pending) error {
	if !worthCommitting(&p.b) {
		return nil
	}
	if err := w.store(ctx, p); err != nil {
		return err
	}
	w.bl.committed(p)
	return nil
}

// store commits p to Postgres and counts it. It may run while the next
// batch is built: it reads only p.
func (w *partitionWorker) store(ctx context.Context, p *pending) error {
	m, b := w.m, &p.b
	began := time.Now()
	if err := m.store.Commit(ctx, b); err != nil {
		return &commitError{first: p.first, n: p.n, to: b.To, err: fmt.Errorf("meter: partition %d: %w", w.partition, err)}
	}
	m.metrics.batchTime.Observe(time.Since(began).Seconds())
	w.observe(p)
	if m.afterCommit != nil {
		m.afterCommit(int(w.partition), b)
	}
	return nil
}

// observe counts a committed batch in the metrics.
func (w *partitionWorker) observe(p *pending) {
	mt, b := w.m.metrics, &p.b
	mt.batches.Inc()
	mt.events.Add(float64(p.n))
	mt.duplicates.Add(float64(p.dups))
	var relays int64
	for i := range b.Messages {
		relays += b.Messages[i].Units
	}
	mt.relays.Add(float64(relays))
	mt.quarantined.Add(float64(len(b.Quarantined)))
	for i := range b.Streams {
		if c := &b.Streams[i]; c.Closed && c.CloseReason.V == reasonAbandoned {
			mt.abandoned.Inc()
		}
	}
	for _, f := range b.Findings {
		mt.findings.WithLabelValues(f.Kind).Inc()
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
