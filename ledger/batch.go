package ledger

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Finding kinds the meter records.
const (
	FindingGap               = "gap"                // seq skipped ahead: expected and got in detail
	FindingChainMismatch     = "chain_mismatch"     // the chain does not follow the previous event
	FindingUnknownStream     = "unknown_stream"     // an event for a stream never opened
	FindingUnknownService    = "unknown_service"    // a stream of a service not configured
	FindingPolicyError       = "policy_error"       // a service's policy could not be built or failed
	FindingCountMismatch     = "count_mismatch"     // StreamClosed counts differ from what was metered
	FindingUndecodable       = "undecodable"        // a record that is not a valid event
	FindingDuplicateMismatch = "duplicate_mismatch" // a duplicate seq whose chain differs from the metered one
	FindingReopened          = "reopened"           // a StreamOpened for a stream already metered
)

// Batch is everything one batch of records of one partition changes, written
// in one transaction together with the move of the partition's offset.
type Batch struct {
	Group     string
	Topic     string
	Partition int
	// From is the stored next offset the batch starts at (NoOffset when
	// none is stored), To the next offset after it.
	From, To int64

	Messages []Message
	Relays   []Relay
	// FillResponses completes the request-side relays of earlier batches
	// that wait for a response: each stream's relays with a NULL
	// response_seq get Seq. FillRequests does the same for response-side
	// relays waiting for a request.
	FillResponses, FillRequests []Fill
	// Unpaired lists closed streams whose relays still lacking a
	// counterpart are marked unpaired.
	Unpaired [][16]byte
	Usage    []UsageDelta
	Streams  []Stream
	Findings []Finding
}

// Message is a messages row.
type Message struct {
	StreamID       [16]byte
	Seq            int64
	ObservedAt     time.Time
	Direction      string
	Role           string
	Method         string
	BatchSize      int32
	RPCID          string
	SubscriptionID string
	WireSize       int64
	PayloadSize    int64
	Units          int64
}

// Relay is a relays row. RequestSeq and ResponseSeq are 0 for none (NULL):
// seqs start at 1.
type Relay struct {
	RelayID       [32]byte
	StreamID      [16]byte
	Seq           int64
	UnitIndex     int32
	RequestSeq    int64
	ResponseSeq   int64
	Unpaired      bool
	Protocol      string
	Service       string
	Application   string
	Supplier      string
	Weight        int64
	Policy        string
	PolicyVersion int32
	ObservedAt    time.Time
}

// Fill gives a stream's waiting relays their counterpart seq.
type Fill struct {
	StreamID [16]byte
	Seq      int64
}

// UsageKey identifies a usage_minutes row.
type UsageKey struct {
	Minute      time.Time
	Protocol    string
	Service     string
	Application string
	Supplier    string
}

// UsageDelta is an increment of a usage_minutes row.
type UsageDelta struct {
	UsageKey
	Messages, Relays, Units, Bytes int64
}

// Finding is a findings row; zero StreamID, Seq and Offset with their Has
// flags false are NULL.
type Finding struct {
	Kind       string
	StreamID   [16]byte
	HasStream  bool
	Seq        int64
	HasSeq     bool
	Topic      string
	Partition  int
	Offset     int64
	HasOffset  bool
	Detail     string
	ObservedAt time.Time // zero: NULL
}

// Commit writes b in one transaction: first the compare-and-set of the
// partition's offset (ErrFenced when another consumer moved it), then
// messages and relays (COPY), pairing fills, unpaired marks, usage upserts,
// stream rows and findings. Either all of it is stored or none.
func (s *Store) Commit(ctx context.Context, b *Batch) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := moveOffset(ctx, tx, b.Group, b.Topic, b.Partition, b.From, b.To); err != nil {
			return err
		}
		if err := copyMessages(ctx, tx, b.Messages); err != nil {
			return err
		}
		if err := copyRelays(ctx, tx, b.Relays); err != nil {
			return err
		}
		if err := fill(ctx, tx, "response_seq", b.FillResponses); err != nil {
			return err
		}
		if err := fill(ctx, tx, "request_seq", b.FillRequests); err != nil {
			return err
		}
		if len(b.Unpaired) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE relays SET unpaired = true WHERE stream_id = ANY($1)
				AND (request_seq IS NULL OR response_seq IS NULL)`, b.Unpaired); err != nil {
				return fmt.Errorf("ledger: mark unpaired: %w", err)
			}
		}
		if err := upsertUsage(ctx, tx, b.Usage); err != nil {
			return err
		}
		if err := upsertStreams(ctx, tx, b.Streams); err != nil {
			return err
		}
		return copyFindings(ctx, tx, b.Findings)
	})
	if err != nil {
		return fmt.Errorf("ledger: commit %s/%d [%d, %d): %w", b.Topic, b.Partition, b.From, b.To, err)
	}
	return nil
}

// rowSource is a pgx.CopyFromSource over n rows that fills one reused
// values slice per row; pgx encodes each row before asking for the next.
type rowSource struct {
	i, n int
	vals []any
	fill func(i int, vals []any)
}

func (r *rowSource) Next() bool { r.i++; return r.i <= r.n }
func (r *rowSource) Values() ([]any, error) {
	r.fill(r.i-1, r.vals)
	return r.vals, nil
}
func (r *rowSource) Err() error { return nil }

var messageColumns = []string{"stream_id", "seq", "observed_at", "direction", "role", "method",
	"batch_size", "rpc_id", "subscription_id", "wire_size", "payload_size", "units"}

func copyMessages(ctx context.Context, tx pgx.Tx, rows []Message) error {
	if len(rows) == 0 {
		return nil
	}
	src := &rowSource{n: len(rows), vals: make([]any, len(messageColumns)), fill: func(i int, v []any) {
		m := &rows[i]
		v[0], v[1], v[2], v[3], v[4], v[5] = m.StreamID, m.Seq, m.ObservedAt, m.Direction, m.Role, m.Method
		v[6], v[7], v[8], v[9], v[10], v[11] = m.BatchSize, m.RPCID, m.SubscriptionID, m.WireSize, m.PayloadSize, m.Units
	}}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"messages"}, messageColumns, src); err != nil {
		return fmt.Errorf("ledger: copy messages: %w", err)
	}
	return nil
}

var relayColumns = []string{"relay_id", "stream_id", "seq", "unit_index", "request_seq", "response_seq",
	"unpaired", "protocol", "service", "application", "supplier", "weight", "policy", "policy_version", "observed_at"}

func copyRelays(ctx context.Context, tx pgx.Tx, rows []Relay) error {
	if len(rows) == 0 {
		return nil
	}
	nullable := func(seq int64) any {
		if seq == 0 {
			return nil
		}
		return seq
	}
	src := &rowSource{n: len(rows), vals: make([]any, len(relayColumns)), fill: func(i int, v []any) {
		r := &rows[i]
		v[0], v[1], v[2], v[3], v[4], v[5] = r.RelayID[:], r.StreamID, r.Seq, r.UnitIndex, nullable(r.RequestSeq), nullable(r.ResponseSeq)
		v[6], v[7], v[8], v[9], v[10], v[11] = r.Unpaired, r.Protocol, r.Service, r.Application, r.Supplier, r.Weight
		v[12], v[13], v[14] = r.Policy, r.PolicyVersion, r.ObservedAt
	}}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"relays"}, relayColumns, src); err != nil {
		return fmt.Errorf("ledger: copy relays: %w", err)
	}
	return nil
}

func fill(ctx context.Context, tx pgx.Tx, column string, fills []Fill) error {
	if len(fills) == 0 {
		return nil
	}
	ids, seqs := make([][16]byte, len(fills)), make([]int64, len(fills))
	for i, f := range fills {
		ids[i], seqs[i] = f.StreamID, f.Seq
	}
	// column is one of two constants, never input.
	_, err := tx.Exec(ctx, `UPDATE relays r SET `+column+` = f.seq
		FROM unnest($1::uuid[], $2::bigint[]) AS f(stream_id, seq)
		WHERE r.stream_id = f.stream_id AND r.`+column+` IS NULL`, ids, seqs)
	if err != nil {
		return fmt.Errorf("ledger: pair waiting relays: %w", err)
	}
	return nil
}

// upsertUsage adds the increments, in key order so that concurrent batches
// of other partitions lock shared rows in the same order.
func upsertUsage(ctx context.Context, tx pgx.Tx, rows []UsageDelta) error {
	if len(rows) == 0 {
		return nil
	}
	sort.Slice(rows, func(i, j int) bool { return usageLess(&rows[i].UsageKey, &rows[j].UsageKey) })
	n := len(rows)
	minute := make([]time.Time, n)
	proto, svc, app, sup := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	msgs, rel, units, bytes := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, u := range rows {
		minute[i], proto[i], svc[i], app[i], sup[i] = u.Minute, u.Protocol, u.Service, u.Application, u.Supplier
		msgs[i], rel[i], units[i], bytes[i] = u.Messages, u.Relays, u.Units, u.Bytes
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

func usageLess(a, b *UsageKey) bool {
	if !a.Minute.Equal(b.Minute) {
		return a.Minute.Before(b.Minute)
	}
	if a.Service != b.Service {
		return a.Service < b.Service
	}
	if a.Application != b.Application {
		return a.Application < b.Application
	}
	if a.Supplier != b.Supplier {
		return a.Supplier < b.Supplier
	}
	return a.Protocol < b.Protocol
}

var findingColumns = []string{"kind", "stream_id", "seq", "topic", "kafka_partition", "kafka_offset", "detail", "observed_at"}

func copyFindings(ctx context.Context, tx pgx.Tx, rows []Finding) error {
	if len(rows) == 0 {
		return nil
	}
	src := &rowSource{n: len(rows), vals: make([]any, len(findingColumns)), fill: func(i int, v []any) {
		f := &rows[i]
		v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7] = f.Kind, nil, nil, nil, nil, nil, f.Detail, nil
		if f.HasStream {
			v[1] = pgtype.UUID{Bytes: f.StreamID, Valid: true}
		}
		if f.HasSeq {
			v[2] = f.Seq
		}
		if f.Topic != "" {
			v[3], v[4] = f.Topic, int32(f.Partition)
		}
		if f.HasOffset {
			v[5] = f.Offset
		}
		if !f.ObservedAt.IsZero() {
			v[7] = f.ObservedAt
		}
	}}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"findings"}, findingColumns, src); err != nil {
		return fmt.Errorf("ledger: copy findings: %w", err)
	}
	return nil
}
