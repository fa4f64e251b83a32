package meter

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
)

// pending is a built batch on its way to Postgres, with what the
// partition does once it is committed.
type pending struct {
	b ledger.Batch
	// seq numbers the batches a builder builds; a stream remembers the
	// last one that touched it.
	seq int64
	// closed are the streams the batch closed: they leave memory once it
	// is committed, unless a later batch touched them again.
	closed []*stream
	dups   int   // duplicates dropped
	n      int   // records metered
	first  int64 // offset of its first record
}

// builder turns a partition's records into ledger.Batches, updating the
// partition's stream state as it goes. It has two batch buffers, so that
// one batch can be built while the one before it is being committed; a
// stream's state then runs ahead of Postgres by at most that batch, and a
// failed commit discards all of it (reset).
type builder struct {
	m         *Meter
	partition int32
	streams   map[uuid.UUID]*stream
	// now is the partition's clock: the latest observation time metered,
	// or the wall clock once the partition has caught up with its log.
	now time.Time

	bufs    [2]pending
	cur     *pending      // the batch being built
	b       *ledger.Batch // &cur.b
	seq     int64
	touched []*stream
	dec     event.Decoder
	ev      *event.Event // the record being metered, from dec
}

func newBuilder(m *Meter, partition int32) *builder {
	bl := &builder{m: m, partition: partition, streams: map[uuid.UUID]*stream{}}
	bl.cur = &bl.bufs[0]
	bl.b = &bl.cur.b
	return bl
}

// keep holds s in memory.
func (bl *builder) keep(s *stream) {
	bl.streams[s.StreamID] = s
	bl.m.metrics.inMemory.Inc()
}

// forget releases s.
func (bl *builder) forget(s *stream) {
	delete(bl.streams, s.StreamID)
	bl.m.metrics.inMemory.Dec()
}

// reset discards every stream's state, as after a failed batch.
func (bl *builder) reset() {
	bl.m.metrics.inMemory.Sub(float64(len(bl.streams)))
	clear(bl.streams)
	for i := range bl.bufs {
		clear(bl.bufs[i].closed)
		bl.bufs[i].closed = bl.bufs[i].closed[:0]
	}
	bl.now = time.Time{}
	bl.begin(ledger.NoOffset)
}

// begin starts a batch at offset from, in the batch buffer the previous
// batch did not use; that batch must be committed by the time the one
// after this begins.
func (bl *builder) begin(from int64) {
	bl.seq++
	bl.cur = &bl.bufs[bl.seq%2]
	bl.b = &bl.cur.b
	p, b := bl.cur, bl.b
	*b = ledger.Batch{Group: bl.m.cfg.GroupID, Topic: bl.m.cfg.Topic, Partition: bl.partition, From: from, To: from,
		Streams: b.Streams[:0], Messages: b.Messages[:0], Findings: b.Findings[:0], Resolved: b.Resolved[:0],
		Quarantined: b.Quarantined[:0]}
	clear(p.closed)
	p.seq, p.closed, p.dups, p.n, p.first = bl.seq, p.closed[:0], 0, 0, 0
	clear(bl.touched)
	bl.touched = bl.touched[:0]
}

// touch marks s changed by the batch being built: its row is written with
// the batch, one version on from the one stored.
func (bl *builder) touch(s *stream) {
	if s.batch != bl.seq {
		s.batch = bl.seq
		s.Version++
		bl.touched = append(bl.touched, s)
	}
}

// finish completes the batch's stream changes before the commit. Its
// streams count as stored from now on: a later batch commits after this
// one, so it writes over their rows.
func (bl *builder) finish() {
	bl.b.Clock = bl.now
	for _, s := range bl.touched {
		bl.b.Streams = append(bl.b.Streams, ledger.StreamChange{Stream: s.row(), Opened: !s.stored, Closed: s.closedIn == bl.seq})
		s.stored = true
		if s.closedIn == bl.seq {
			bl.cur.closed = append(bl.cur.closed, s)
		}
	}
}

// committed runs once p is committed: the streams it closed leave memory
// (a late event reads them again), unless a later batch touched them.
func (bl *builder) committed(p *pending) {
	for _, s := range p.closed {
		if s.batch == p.seq {
			bl.forget(s)
		}
	}
	clear(p.closed)
	p.closed = p.closed[:0]
}

// worthCommitting reports whether b changes anything.
func worthCommitting(b *ledger.Batch) bool { return b.To != b.From || len(b.Streams) > 0 }

func (bl *builder) finding(f ledger.Finding) { bl.b.Findings = append(bl.b.Findings, f) }

func (bl *builder) streamFinding(kind string, id uuid.UUID, seq int64, observed int64, detail string) {
	bl.finding(ledger.Finding{Kind: kind, StreamID: some(id), Seq: some(seq), Detail: detail, ObservedAt: some(unixTime(observed))})
}

// quarantine sets rec aside, whole, with why: it is not metered, and the
// batch goes on after it.
func (bl *builder) quarantine(rec *kafka.Message, why string) {
	q := ledger.Quarantined{Topic: rec.Topic, Partition: int32(rec.Partition), Offset: rec.Offset, Key: rec.Key,
		Value: rec.Value, Time: rec.Time, Error: why}
	for _, h := range rec.Headers {
		q.Headers = append(q.Headers, ledger.Header{Key: h.Key, Value: h.Value})
	}
	bl.b.Quarantined = append(bl.b.Quarantined, q)
	bl.b.To = rec.Offset + 1
	bl.finding(ledger.Finding{Kind: FindingQuarantined, Topic: some(rec.Topic), Partition: some(int32(rec.Partition)),
		Offset: some(rec.Offset), Detail: why})
}

// load brings the stored state of the records' streams not in memory.
func (bl *builder) load(ctx context.Context, recs []kafka.Message) error {
	var ids []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for i := range recs {
		id, ok := event.PeekStreamID(recs[i].Value)
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		if _, ok := bl.streams[id]; !ok {
			ids = append(ids, id)
		}
	}
	rows, err := bl.m.store.Streams(ctx, ids)
	if err != nil {
		return fmt.Errorf("meter: load streams: %w", err)
	}
	return bl.adopt(ctx, rows)
}

// preload brings the partition's open streams into memory, so that the
// ones whose edge went away can be closed.
func (bl *builder) preload(ctx context.Context) error {
	rows, err := bl.m.store.OpenStreams(ctx, bl.m.cfg.Topic, bl.partition)
	if err != nil {
		return fmt.Errorf("meter: load open streams: %w", err)
	}
	return bl.adopt(ctx, rows)
}

// adopt takes stored rows as the streams' state, priced as they were
// recorded.
func (bl *builder) adopt(ctx context.Context, rows []ledger.Stream) error {
	for _, r := range rows {
		if _, ok := bl.streams[r.StreamID]; ok {
			continue
		}
		p, err := bl.m.services.priced(ctx, r.PolicyID, r.ComputeUnits)
		if err != nil {
			return err
		}
		bl.keep(&stream{Stream: r, pricing: p, stored: true})
		if r.LastObservedAt.After(bl.now) {
			bl.now = r.LastObservedAt
		}
	}
	return nil
}

// sweep closes, as abandoned, the open streams that have seen no event for
// longer than the idle timeout by the partition's clock; it reports
// whether it closed any. Their edge went away without a StreamClosed (it
// was killed): their waiting relays become unpaired and their memory is
// released once the batch commits.
func (bl *builder) sweep() bool {
	timeout := bl.m.cfg.StreamIdleTimeout
	any := false
	for _, s := range bl.streams {
		if !s.abandoned(bl.now, timeout) {
			continue
		}
		bl.touch(s)
		s.ClosedAt = some(s.LastObservedAt)
		s.CloseReason = some(reasonAbandoned)
		s.closedIn = bl.seq
		bl.remainder(s, s.LastSeq, s.LastObservedAt.UnixNano())
		any = true
	}
	return any
}

// reasonAbandoned is the close reason of a stream the meter closed after
// its idle timeout.
const reasonAbandoned = "abandoned"

func some[T any](v T) sql.Null[T] { return sql.Null[T]{V: v, Valid: true} }
