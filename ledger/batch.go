package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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

// copyEncoder builds the body of a COPY ... FROM STDIN (FORMAT binary):
// the header, rows of length-prefixed fields in PostgreSQL's binary format,
// and the trailer. The meter's rows have a few fixed column types, so
// encoding them here skips pgx's per-value type planning and the round
// trip pgx.CopyFrom spends describing the table.
type copyEncoder struct{ b []byte }

// copyHeader is the binary COPY signature, flags and header extension length.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

func (e *copyEncoder) reset()         { e.b = append(e.b[:0], copyHeader...) }
func (e *copyEncoder) row(fields int) { e.b = binary.BigEndian.AppendUint16(e.b, uint16(fields)) }
func (e *copyEncoder) null()          { e.b = binary.BigEndian.AppendUint32(e.b, 0xffffffff) }
func (e *copyEncoder) finish() []byte { return binary.BigEndian.AppendUint16(e.b, 0xffff) }
func (e *copyEncoder) int8(v int64) {
	e.b = binary.BigEndian.AppendUint64(append(e.b, 0, 0, 0, 8), uint64(v))
}
func (e *copyEncoder) int4(v int32) {
	e.b = binary.BigEndian.AppendUint32(append(e.b, 0, 0, 0, 4), uint32(v))
}
func (e *copyEncoder) uuid(v [16]byte) { e.b = append(append(e.b, 0, 0, 0, 16), v[:]...) }

func (e *copyEncoder) bool(v bool) {
	var c byte
	if v {
		c = 1
	}
	e.b = append(e.b, 0, 0, 0, 1, c)
}

func (e *copyEncoder) bytea(v []byte) {
	e.b = append(binary.BigEndian.AppendUint32(e.b, uint32(len(v))), v...)
}

func (e *copyEncoder) text(v string) {
	e.b = append(binary.BigEndian.AppendUint32(e.b, uint32(len(v))), v...)
}

// timestamptz encodes t as microseconds since 2000-01-01 UTC.
func (e *copyEncoder) timestamptz(t time.Time) {
	const unixToY2K = 946684800 * 1000000
	e.int8(t.Unix()*1000000 + int64(t.Nanosecond())/1000 - unixToY2K)
}

// int8OrNull encodes v, or NULL for 0.
func (e *copyEncoder) int8OrNull(v int64) {
	if v == 0 {
		e.null()
		return
	}
	e.int8(v)
}

// copyEncoders reuses encoding buffers across commits.
var copyEncoders = sync.Pool{New: func() any { return new(copyEncoder) }}

// copyIn runs COPY table (columns) FROM STDIN with the rows encode writes.
func copyIn(ctx context.Context, tx pgx.Tx, table string, columns []string, encode func(e *copyEncoder)) error {
	e := copyEncoders.Get().(*copyEncoder)
	defer copyEncoders.Put(e)
	e.reset()
	encode(e)
	sql := "COPY " + pgx.Identifier{table}.Sanitize() + " (" + strings.Join(columns, ", ") + ") FROM STDIN (FORMAT binary)"
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(e.finish()), sql); err != nil {
		return err
	}
	return nil
}

var messageColumns = []string{"stream_id", "seq", "observed_at", "direction", "role", "method",
	"batch_size", "rpc_id", "subscription_id", "wire_size", "payload_size", "units"}

func copyMessages(ctx context.Context, tx pgx.Tx, rows []Message) error {
	if len(rows) == 0 {
		return nil
	}
	err := copyIn(ctx, tx, "messages", messageColumns, func(e *copyEncoder) {
		for i := range rows {
			m := &rows[i]
			e.row(len(messageColumns))
			e.uuid(m.StreamID)
			e.int8(m.Seq)
			e.timestamptz(m.ObservedAt)
			e.text(m.Direction)
			e.text(m.Role)
			e.text(m.Method)
			e.int4(m.BatchSize)
			e.text(m.RPCID)
			e.text(m.SubscriptionID)
			e.int8(m.WireSize)
			e.int8(m.PayloadSize)
			e.int8(m.Units)
		}
	})
	if err != nil {
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
	err := copyIn(ctx, tx, "relays", relayColumns, func(e *copyEncoder) {
		for i := range rows {
			r := &rows[i]
			e.row(len(relayColumns))
			e.bytea(r.RelayID[:])
			e.uuid(r.StreamID)
			e.int8(r.Seq)
			e.int4(r.UnitIndex)
			e.int8OrNull(r.RequestSeq)
			e.int8OrNull(r.ResponseSeq)
			e.bool(r.Unpaired)
			e.text(r.Protocol)
			e.text(r.Service)
			e.text(r.Application)
			e.text(r.Supplier)
			e.int8(r.Weight)
			e.text(r.Policy)
			e.int4(r.PolicyVersion)
			e.timestamptz(r.ObservedAt)
		}
	})
	if err != nil {
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
	err := copyIn(ctx, tx, "findings", findingColumns, func(e *copyEncoder) {
		for i := range rows {
			f := &rows[i]
			e.row(len(findingColumns))
			e.text(f.Kind)
			if f.HasStream {
				e.uuid(f.StreamID)
			} else {
				e.null()
			}
			if f.HasSeq {
				e.int8(f.Seq)
			} else {
				e.null()
			}
			if f.Topic != "" {
				e.text(f.Topic)
				e.int4(int32(f.Partition))
			} else {
				e.null()
				e.null()
			}
			if f.HasOffset {
				e.int8(f.Offset)
			} else {
				e.null()
			}
			e.text(f.Detail)
			if !f.ObservedAt.IsZero() {
				e.timestamptz(f.ObservedAt)
			} else {
				e.null()
			}
		}
	})
	if err != nil {
		return fmt.Errorf("ledger: copy findings: %w", err)
	}
	return nil
}
