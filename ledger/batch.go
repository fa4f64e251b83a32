package ledger

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Batch is what one batch of records of one partition established, as the
// meter decided it: the streams it touched as they stand afterwards, the
// messages it metered, what it noticed, what it resolved and what it set
// aside. Commit stores it, and the move of the partition's offset, in one
// transaction; how each fact becomes rows (and rollups) is the ledger's
// business.
type Batch struct {
	Group     string
	Topic     string
	Partition int32
	// From is the stored next offset the batch starts at (NoOffset when
	// none is stored), To the next offset after it.
	From, To int64
	// Clock is the partition's clock after the batch: the latest
	// observation time metered, or the wall clock once the partition has
	// caught up with its log; zero for none. A window settles once every
	// partition's clock passed it.
	Clock time.Time

	// Streams holds every stream a message of the batch belongs to, and
	// every stream the batch otherwise changed.
	Streams     []StreamChange
	Messages    []Message
	Findings    []Finding
	Resolved    []Resolution
	Quarantined []Quarantined
}

// StreamChange is a stream as a batch leaves it.
type StreamChange struct {
	Stream
	// Opened: the batch stores the stream first (its row is new, Version
	// 1); otherwise the stored row is at Version-1.
	Opened bool
	// Closed: the batch closed the stream. When its close says that
	// messages were recorded but never crossed the edge, their usage is
	// taken back.
	Closed bool
}

// Commit writes b in one transaction: first the compare-and-set of the
// partition's offset and its clock (ErrFenced when another consumer moved
// it), holding the settlement lock shared, then the streams (ErrStreamConflict when another meter wrote one since it was
// read), messages, usage rollups, findings and their resolutions, and the
// quarantine. Either all of it is stored or none. A message whose RelayAt
// is in a settled window is a late relay, and a message a close says never
// crossed although its window is settled is taken back: both get a finding
// that the next settlement adjusts.
func (s *Store) Commit(ctx context.Context, b *Batch) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		settledUntil, err := moveOffset(ctx, tx, b.Group, b.Topic, b.Partition, b.From, b.To, b.Clock)
		if err != nil {
			return err
		}
		var opened, changed []*Stream
		var closed []*StreamChange
		for i := range b.Streams {
			c := &b.Streams[i]
			if c.Opened {
				opened = append(opened, &c.Stream)
			} else {
				changed = append(changed, &c.Stream)
			}
			if c.Closed && (uncrossed(&c.Stream, false) || uncrossed(&c.Stream, true)) {
				closed = append(closed, c)
			}
		}
		if err := insertStreams(ctx, tx, opened); err != nil {
			return err
		}
		if err := updateStreams(ctx, tx, changed); err != nil {
			return err
		}
		if err := copyMessages(ctx, tx, b.Messages); err != nil {
			return err
		}
		if err := recordLateRelays(ctx, tx, b.Messages, settledUntil); err != nil {
			return err
		}
		if err := upsertUsage(ctx, tx, usageOf(b)); err != nil {
			return err
		}
		if err := takeBackUncrossed(ctx, tx, closed); err != nil {
			return err
		}
		if err := recordUncrossedAfterSettlement(ctx, tx, closed, settledUntil); err != nil {
			return err
		}
		if err := copyFindings(ctx, tx, b.Findings); err != nil {
			return err
		}
		if err := resolveFindings(ctx, tx, b.Resolved); err != nil {
			return err
		}
		return insertQuarantined(ctx, tx, b.Quarantined)
	})
	if err != nil {
		return fmt.Errorf("ledger: commit %s/%d [%d, %d): %w", b.Topic, b.Partition, b.From, b.To, err)
	}
	return nil
}

// usageKey identifies a usage_minutes row.
type usageKey struct {
	minute                                   time.Time
	protocol, service, application, supplier string
}

// usageDelta is an increment of a usage_minutes row.
type usageDelta struct {
	usageKey
	messages, relays, units, bytes int64
}

// usageOf sums the batch's messages into per-minute rollup increments, in
// key order so that concurrent batches of other partitions lock shared
// rows in the same order.
func usageOf(b *Batch) []usageDelta {
	streams := make(map[uuid.UUID]*Stream, len(b.Streams))
	for i := range b.Streams {
		streams[b.Streams[i].StreamID] = &b.Streams[i].Stream
	}
	index := map[usageKey]int{}
	var out []usageDelta
	for i := range b.Messages {
		m := &b.Messages[i]
		st := streams[m.StreamID]
		k := usageKey{minute: m.ObservedAt.UTC().Truncate(time.Minute), protocol: st.Protocol, service: st.Service,
			application: st.Application, supplier: st.Supplier}
		j, ok := index[k]
		if !ok {
			j = len(out)
			index[k] = j
			out = append(out, usageDelta{usageKey: k})
		}
		u := &out[j]
		u.messages++
		u.relays += m.Units
		u.units += m.Units * st.ComputeUnits
		u.bytes += m.WireSize
	}
	sort.Slice(out, func(i, j int) bool { return usageLess(&out[i].usageKey, &out[j].usageKey) })
	return out
}

func usageLess(a, b *usageKey) bool {
	if !a.minute.Equal(b.minute) {
		return a.minute.Before(b.minute)
	}
	if c := strings.Compare(a.service, b.service); c != 0 {
		return c < 0
	}
	if c := strings.Compare(a.application, b.application); c != 0 {
		return c < 0
	}
	if c := strings.Compare(a.supplier, b.supplier); c != 0 {
		return c < 0
	}
	return a.protocol < b.protocol
}

// upsertUsage adds the increments to the rollups.
func upsertUsage(ctx context.Context, tx pgx.Tx, rows []usageDelta) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	minute := make([]time.Time, n)
	proto, svc, app, sup := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	msgs, rel, units, bytes := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, u := range rows {
		minute[i], proto[i], svc[i], app[i], sup[i] = u.minute, u.protocol, u.service, u.application, u.supplier
		msgs[i], rel[i], units[i], bytes[i] = u.messages, u.relays, u.units, u.bytes
	}
	_, err := tx.Exec(ctx, `INSERT INTO usage_minutes (minute, protocol, service, application, supplier,
			messages, relays, units, bytes)
		SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
			$6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
		ON CONFLICT (minute, service, application, supplier, protocol) DO UPDATE SET
			messages = usage_minutes.messages + EXCLUDED.messages, relays = usage_minutes.relays + EXCLUDED.relays,
			units = usage_minutes.units + EXCLUDED.units, bytes = usage_minutes.bytes + EXCLUDED.bytes`,
		minute, proto, svc, app, sup, msgs, rel, units, bytes)
	if err != nil {
		return fmt.Errorf("ledger: upsert usage: %w", err)
	}
	return nil
}

// uncrossed reports whether the close of st says that messages of a side
// were recorded and never crossed the edge.
func uncrossed(st *Stream, response bool) bool {
	last := st.LastRequestSeq
	if response {
		last = st.LastResponseSeq
	}
	return last.Valid && !st.Crossed(response, last.V)
}

// takeBackUncrossed subtracts from the rollups the messages of closed
// streams that were recorded but never crossed the edge: usage counts what
// crossed. The messages stay, visible as not crossed.
func takeBackUncrossed(ctx context.Context, tx pgx.Tx, closed []*StreamChange) error {
	if len(closed) == 0 {
		return nil
	}
	ids, up, down := make([]uuid.UUID, len(closed)), make([]*int64, len(closed)), make([]*int64, len(closed))
	for i, c := range closed {
		ids[i], up[i], down[i] = c.StreamID, ptr(c.ForwardedToUpstreamSeq), ptr(c.ForwardedToClientSeq)
	}
	_, err := tx.Exec(ctx, `WITH taken AS (
			SELECT date_trunc('minute', m.observed_at, 'UTC') AS minute, s.protocol, s.service, s.application, s.supplier,
				count(*) AS messages, sum(m.units) AS relays, sum(m.units * s.compute_units) AS units,
				sum(m.wire_size) AS bytes
			FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS c(stream_id, up, down)
			JOIN streams s ON s.stream_id = c.stream_id
			JOIN messages m ON m.stream_id = c.stream_id
				AND m.seq > least(coalesce(c.up, 9223372036854775807), coalesce(c.down, 9223372036854775807))
			WHERE CASE WHEN m.direction = 2 THEN m.seq > c.down ELSE m.seq > c.up END
			GROUP BY 1, 2, 3, 4, 5)
		UPDATE usage_minutes u SET messages = u.messages - t.messages, relays = u.relays - t.relays,
			units = u.units - t.units, bytes = u.bytes - t.bytes
		FROM taken t WHERE u.minute = t.minute AND u.service = t.service AND u.application = t.application
			AND u.supplier = t.supplier AND u.protocol = t.protocol`, ids, up, down)
	if err != nil {
		return fmt.Errorf("ledger: take back usage of messages that did not cross: %w", err)
	}
	return nil
}
