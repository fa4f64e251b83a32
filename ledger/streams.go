package ledger

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Stream is a streams row: a stream's identity, the meter's state for it
// after the last batch that touched it, and its close. The meter writes
// these rows and the API reads them. As in every row type of this package,
// a nullable column is a sql.Null.
type Stream struct {
	StreamID     uuid.UUID
	Topic        string
	Partition    int32
	Protocol     string
	Service      string
	Application  string
	Supplier     string
	EdgeID       string
	ClientAddr   string
	UpstreamAddr string
	APIKeyID     string // the id of the key the client presented; "" with open access
	PolicyID     int64  // the policies row the stream is priced with, for its whole life
	ComputeUnits int64  // the weight of each of its relays
	OpenedAt     time.Time

	// Version counts the batches that wrote the row; a batch writes a
	// stream only over the version it read, so two meters that both
	// believe they own a stream cannot both win.
	Version        int64
	LastSeq        int64
	Chain          []byte // after LastSeq
	LastObservedAt time.Time
	// Gaps are the seqs below LastSeq not metered yet, oldest first; a
	// late event fills its gap.
	Gaps []Gap
	// Pairing: the latest message of each side (request side: every
	// direction but UPSTREAM_TO_CLIENT), and the first message of the side
	// that came second, which every message metered before it pairs with.
	LastRequestSeq      sql.Null[int64]
	LastResponseSeq     sql.Null[int64]
	FirstCounterpartSeq sql.Null[int64]
	PolicyState         []byte // the policy's carry; empty for none

	// What was metered: Message events by direction (wire bytes), the
	// relays they yielded, duplicate events dropped.
	MessagesToUpstream int64
	BytesToUpstream    int64
	MessagesToClient   int64
	BytesToClient      int64
	Relays             int64
	Duplicates         int64

	ClosedAt    sql.Null[time.Time]
	CloseReason sql.Null[string]
	CloseCode   sql.Null[int32]
	// Complete: the StreamClosed counts equal what was metered.
	Complete sql.Null[bool]
	// What crossed the edge, from StreamClosed: every message of the
	// direction up to this seq was forwarded, none after it.
	ForwardedToUpstreamSeq sql.Null[int64]
	ForwardedToClientSeq   sql.Null[int64]

	// LastRequestAt is the observation time of the message at
	// LastRequestSeq, read with the row by Streams and OpenStreams (the
	// meter's reads) and never written: a response's relays are timed by
	// it.
	LastRequestAt sql.Null[time.Time]
}

// Gap is a run of seqs a stream skipped, From to To inclusive.
type Gap struct {
	From, To int64
	// Finding is the seq of the gap finding this run belongs to (the first
	// seq of the run as first recorded; a partly filled gap splits).
	Finding int64
	// Prev is the chain of seq From-1 when known: a late event at From is
	// verified against it.
	Prev []byte
}

// Crossed reports whether the message of s at seq, read from the given
// side (response: UPSTREAM_TO_CLIENT), crossed the edge. Only a close that
// says what crossed makes a message not cross.
func (s *Stream) Crossed(response bool, seq int64) bool {
	through := s.ForwardedToUpstreamSeq
	if response {
		through = s.ForwardedToClientSeq
	}
	return !through.Valid || seq <= through.V
}

// Closed reports whether the stream is closed.
func (s *Stream) Closed() bool { return s.ClosedAt.Valid }

// ErrStreamConflict reports a stream written by another meter since this
// one read it (a stream whose events reached two partitions, or two meters
// on one partition): nothing of the batch is stored, and the meter reads
// the stream again.
var ErrStreamConflict = errors.New("ledger: stream written by another meter")

const streamColumns = `stream_id, topic, kafka_partition, protocol, service, application, supplier,
	edge_id, client_addr, upstream_addr, policy_id, compute_units, opened_at, state_version, last_seq, chain,
	last_observed_at, gaps, last_request_seq, last_response_seq, first_counterpart_seq, policy_state,
	messages_to_upstream, bytes_to_upstream, messages_to_client, bytes_to_client, relays, duplicates,
	closed_at, close_reason, close_code, complete, forwarded_to_upstream_seq, forwarded_to_client_seq, api_key_id`

// lastRequestAtColumn reads LastRequestAt after streamColumns.
const lastRequestAtColumn = `, (SELECT m.observed_at FROM messages m
	WHERE m.stream_id = streams.stream_id AND m.seq = streams.last_request_seq)`

// scanStream reads a row of streamColumns.
func scanStream(row pgx.CollectableRow) (Stream, error) { return scanStreamWith(row) }

// scanMeterStream reads a row of streamColumns and lastRequestAtColumn.
func scanMeterStream(row pgx.CollectableRow) (Stream, error) {
	var at sql.Null[time.Time]
	v, err := scanStreamWith(row, &at)
	v.LastRequestAt = at
	return v, err
}

// scanStreamWith reads a row of streamColumns followed by extra columns.
func scanStreamWith(row pgx.CollectableRow, extra ...any) (Stream, error) {
	var v Stream
	var gaps []byte
	dest := []any{&v.StreamID, &v.Topic, &v.Partition, &v.Protocol, &v.Service, &v.Application, &v.Supplier,
		&v.EdgeID, &v.ClientAddr, &v.UpstreamAddr, &v.PolicyID, &v.ComputeUnits, &v.OpenedAt, &v.Version,
		&v.LastSeq, &v.Chain, &v.LastObservedAt, &gaps, &v.LastRequestSeq, &v.LastResponseSeq,
		&v.FirstCounterpartSeq, &v.PolicyState, &v.MessagesToUpstream, &v.BytesToUpstream, &v.MessagesToClient,
		&v.BytesToClient, &v.Relays, &v.Duplicates, &v.ClosedAt, &v.CloseReason, &v.CloseCode, &v.Complete,
		&v.ForwardedToUpstreamSeq, &v.ForwardedToClientSeq, &v.APIKeyID}
	err := row.Scan(append(dest, extra...)...)
	if err != nil {
		return v, err
	}
	v.Gaps, err = decodeGaps(gaps)
	return v, err
}

// Streams returns the stored rows of the given streams; ids not stored are
// absent from the result.
func (s *Store) Streams(ctx context.Context, ids []uuid.UUID) ([]Stream, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.queryStreams(ctx, `SELECT `+streamColumns+lastRequestAtColumn+` FROM streams WHERE stream_id = ANY($1)`, ids)
}

// OpenStreams returns the streams of a partition that are not closed: the
// state a meter needs to close the ones whose edge went away.
func (s *Store) OpenStreams(ctx context.Context, topic string, partition int32) ([]Stream, error) {
	return s.queryStreams(ctx, `SELECT `+streamColumns+lastRequestAtColumn+` FROM streams
		WHERE topic = $1 AND kafka_partition = $2 AND closed_at IS NULL`, topic, partition)
}

func (s *Store) queryStreams(ctx context.Context, q string, args ...any) ([]Stream, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: read streams: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanMeterStream)
	if err != nil {
		return nil, fmt.Errorf("ledger: read streams: %w", err)
	}
	return out, nil
}

// streamArrays are the columns of a set of streams as arrays, for unnest.
type streamArrays struct {
	ids                                       []uuid.UUID
	topic, proto, svc, app, sup, edge, ca, ua []string
	key                                       []string
	part                                      []int32
	policy, cu, version, last                 []int64
	mu, bu, mc, bc, relays, dups              []int64
	opened, observed                          []time.Time
	chain, gaps, carry                        [][]byte
	lreq, lresp, first, fwdUp, fwdDown        []*int64
	closed                                    []*time.Time
	reason                                    []*string
	code                                      []*int32
	complete                                  []*bool
}

func (a *streamArrays) add(v *Stream) {
	a.ids = append(a.ids, v.StreamID)
	a.topic, a.part, a.proto = append(a.topic, v.Topic), append(a.part, v.Partition), append(a.proto, v.Protocol)
	a.svc, a.app, a.sup = append(a.svc, v.Service), append(a.app, v.Application), append(a.sup, v.Supplier)
	a.edge, a.ca, a.ua = append(a.edge, v.EdgeID), append(a.ca, v.ClientAddr), append(a.ua, v.UpstreamAddr)
	a.key = append(a.key, v.APIKeyID)
	a.policy, a.cu, a.opened = append(a.policy, v.PolicyID), append(a.cu, v.ComputeUnits), append(a.opened, v.OpenedAt)
	a.version, a.last, a.chain = append(a.version, v.Version), append(a.last, v.LastSeq), append(a.chain, v.Chain)
	a.observed, a.gaps = append(a.observed, v.LastObservedAt), append(a.gaps, encodeGaps(v.Gaps))
	a.lreq, a.lresp = append(a.lreq, ptr(v.LastRequestSeq)), append(a.lresp, ptr(v.LastResponseSeq))
	a.first, a.carry = append(a.first, ptr(v.FirstCounterpartSeq)), append(a.carry, nonNil(v.PolicyState))
	a.mu, a.bu = append(a.mu, v.MessagesToUpstream), append(a.bu, v.BytesToUpstream)
	a.mc, a.bc = append(a.mc, v.MessagesToClient), append(a.bc, v.BytesToClient)
	a.relays, a.dups = append(a.relays, v.Relays), append(a.dups, v.Duplicates)
	a.closed, a.reason, a.code = append(a.closed, ptr(v.ClosedAt)), append(a.reason, ptr(v.CloseReason)), append(a.code, ptr(v.CloseCode))
	a.complete = append(a.complete, ptr(v.Complete))
	a.fwdUp, a.fwdDown = append(a.fwdUp, ptr(v.ForwardedToUpstreamSeq)), append(a.fwdDown, ptr(v.ForwardedToClientSeq))
}

// insertStreams inserts streams first written by a batch. A stream
// already stored (another meter wrote it) is ErrStreamConflict.
func insertStreams(ctx context.Context, tx pgx.Tx, streams []*Stream) error {
	if len(streams) == 0 {
		return nil
	}
	var a streamArrays
	for _, v := range streams {
		a.add(v)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO streams (`+streamColumns+`)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::timestamptz[], $14::bigint[],
			$15::bigint[], $16::bytea[], $17::timestamptz[], $18::bytea[], $19::bigint[], $20::bigint[], $21::bigint[],
			$22::bytea[], $23::bigint[], $24::bigint[], $25::bigint[], $26::bigint[], $27::bigint[], $28::bigint[],
			$29::timestamptz[], $30::text[], $31::int[], $32::boolean[], $33::bigint[], $34::bigint[], $35::text[])
		ON CONFLICT (stream_id) DO NOTHING`,
		a.ids, a.topic, a.part, a.proto, a.svc, a.app, a.sup, a.edge, a.ca, a.ua, a.policy, a.cu, a.opened, a.version,
		a.last, a.chain, a.observed, a.gaps, a.lreq, a.lresp, a.first, a.carry, a.mu, a.bu, a.mc, a.bc, a.relays, a.dups,
		a.closed, a.reason, a.code, a.complete, a.fwdUp, a.fwdDown, a.key)
	if err != nil {
		return fmt.Errorf("ledger: insert streams: %w", err)
	}
	if n := tag.RowsAffected(); n != int64(len(streams)) {
		return fmt.Errorf("%w: %d of %d new streams already stored", ErrStreamConflict, int64(len(streams))-n, len(streams))
	}
	return nil
}

// updateStreams writes the state and close of stored streams, each over
// the version before its own; a stream whose stored version is another is
// ErrStreamConflict. The identity columns never change.
func updateStreams(ctx context.Context, tx pgx.Tx, streams []*Stream) error {
	if len(streams) == 0 {
		return nil
	}
	var a streamArrays
	for _, v := range streams {
		a.add(v)
	}
	tag, err := tx.Exec(ctx, `UPDATE streams s SET state_version = u.version, last_seq = u.last, chain = u.chain,
			last_observed_at = u.observed, gaps = u.gaps, last_request_seq = u.lreq, last_response_seq = u.lresp,
			first_counterpart_seq = u.first, policy_state = u.carry, messages_to_upstream = u.mu,
			bytes_to_upstream = u.bu, messages_to_client = u.mc, bytes_to_client = u.bc, relays = u.relays,
			duplicates = u.dups, closed_at = u.closed, close_reason = u.reason, close_code = u.code,
			complete = u.complete, forwarded_to_upstream_seq = u.fwd_up, forwarded_to_client_seq = u.fwd_down
		FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bytea[], $5::timestamptz[], $6::bytea[],
			$7::bigint[], $8::bigint[], $9::bigint[], $10::bytea[], $11::bigint[], $12::bigint[], $13::bigint[],
			$14::bigint[], $15::bigint[], $16::bigint[], $17::timestamptz[], $18::text[], $19::int[],
			$20::boolean[], $21::bigint[], $22::bigint[])
			AS u(id, version, last, chain, observed, gaps, lreq, lresp, first, carry, mu, bu, mc, bc, relays, dups,
				closed, reason, code, complete, fwd_up, fwd_down)
		WHERE s.stream_id = u.id AND s.state_version = u.version - 1`,
		a.ids, a.version, a.last, a.chain, a.observed, a.gaps, a.lreq, a.lresp, a.first, a.carry, a.mu, a.bu, a.mc,
		a.bc, a.relays, a.dups, a.closed, a.reason, a.code, a.complete, a.fwdUp, a.fwdDown)
	if err != nil {
		return fmt.Errorf("ledger: update streams: %w", err)
	}
	if n := tag.RowsAffected(); n != int64(len(streams)) {
		return fmt.Errorf("%w: %d of %d streams changed since they were read", ErrStreamConflict, int64(len(streams))-n, len(streams))
	}
	return nil
}

// encodeGaps encodes gaps as they are stored: per gap From, To-From and
// Finding as uvarints, then the length of Prev (0 or 32) and Prev.
func encodeGaps(gaps []Gap) []byte {
	if len(gaps) == 0 {
		return []byte{}
	}
	b := make([]byte, 0, len(gaps)*(3*binary.MaxVarintLen64+33))
	for _, g := range gaps {
		b = binary.AppendUvarint(b, uint64(g.From))
		b = binary.AppendUvarint(b, uint64(g.To-g.From))
		b = binary.AppendUvarint(b, uint64(g.Finding))
		b = append(b, byte(len(g.Prev)))
		b = append(b, g.Prev...)
	}
	return b
}

func decodeGaps(b []byte) ([]Gap, error) {
	var gaps []Gap
	for len(b) > 0 {
		var v [3]uint64
		for i := range v {
			x, n := binary.Uvarint(b)
			if n <= 0 || x > 1<<62 {
				return nil, errors.New("ledger: corrupt stream gaps")
			}
			v[i], b = x, b[n:]
		}
		if len(b) == 0 || int(b[0]) > len(b)-1 {
			return nil, errors.New("ledger: corrupt stream gaps")
		}
		prev := b[1 : 1+int(b[0])]
		b = b[1+len(prev):]
		g := Gap{From: int64(v[0]), To: int64(v[0] + v[1]), Finding: int64(v[2])}
		if len(prev) > 0 {
			g.Prev = append([]byte(nil), prev...)
		}
		gaps = append(gaps, g)
	}
	return gaps, nil
}

// ptr returns a pointer to v's value, or nil for NULL: how pgx takes a
// nullable array element.
func ptr[T any](v sql.Null[T]) *T {
	if !v.Valid {
		return nil
	}
	return &v.V
}

// nonNil returns b, or an empty slice for nil: NOT NULL bytea.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
