package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Stream is a streams row: a stream's identity, the meter's state for it and
// what was metered; the meter and the API read the same rows. Nullable columns are pointers (or nil slices).
type Stream struct {
	StreamID           [16]byte
	Topic              string
	Partition          int
	Protocol           string
	Service            string
	Application        string
	Supplier           string
	EdgeID             string
	ClientAddr         string
	UpstreamAddr       string
	Policy             string
	PolicyVersion      int
	ComputeUnits       int64
	OpenedAt           time.Time
	ClosedAt           *time.Time
	CloseReason        *string
	CloseCode          *int32
	LastSeq            int64
	Chain              []byte
	MessagesToUpstream int64
	BytesToUpstream    int64
	MessagesToClient   int64
	BytesToClient      int64
	Relays             int64
	Units              int64
	Duplicates         int64
	LastRequestSeq     *int64
	LastResponseSeq    *int64
	PolicyState        []byte
	Complete           *bool
}

const streamColumns = `stream_id, topic, kafka_partition, protocol, service, application, supplier,
	edge_id, client_addr, upstream_addr, policy, policy_version, compute_units, opened_at, closed_at,
	close_reason, close_code, last_seq, chain, messages_to_upstream, bytes_to_upstream,
	messages_to_client, bytes_to_client, relays, units, duplicates, last_request_seq,
	last_response_seq, policy_state, complete`

// Streams returns the stored rows of the given streams; ids not stored are
// absent from the result.
func (s *Store) Streams(ctx context.Context, ids [][16]byte) ([]Stream, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+streamColumns+` FROM streams WHERE stream_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("ledger: read streams: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanStream)
	if err != nil {
		return nil, fmt.Errorf("ledger: read streams: %w", err)
	}
	return out, nil
}

// scanStream reads a row of streamColumns.
func scanStream(row pgx.CollectableRow) (Stream, error) {
	var v Stream
	err := row.Scan(&v.StreamID, &v.Topic, &v.Partition, &v.Protocol, &v.Service, &v.Application,
		&v.Supplier, &v.EdgeID, &v.ClientAddr, &v.UpstreamAddr, &v.Policy, &v.PolicyVersion,
		&v.ComputeUnits, &v.OpenedAt, &v.ClosedAt, &v.CloseReason, &v.CloseCode, &v.LastSeq, &v.Chain,
		&v.MessagesToUpstream, &v.BytesToUpstream, &v.MessagesToClient, &v.BytesToClient, &v.Relays,
		&v.Units, &v.Duplicates, &v.LastRequestSeq, &v.LastResponseSeq, &v.PolicyState, &v.Complete)
	return v, err
}

// upsertStreams writes streams as they stand after a batch: new ones are
// inserted, stored ones have their meter state and counts replaced.
func upsertStreams(ctx context.Context, tx pgx.Tx, streams []Stream) error {
	if len(streams) == 0 {
		return nil
	}
	n := len(streams)
	var (
		ids                                       = make([][16]byte, n)
		topic, proto, svc, app, sup, edge, ca, ua = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		pol                                       = make([]string, n)
		part, pver                                = make([]int32, n), make([]int32, n)
		cu, last, mu, bu, mc, bc, rel, units, dup = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		opened                                    = make([]time.Time, n)
		closed                                    = make([]*time.Time, n)
		reason                                    = make([]*string, n)
		code                                      = make([]*int32, n)
		chain, pstate                             = make([][]byte, n), make([][]byte, n)
		lreq, lresp                               = make([]*int64, n), make([]*int64, n)
		complete                                  = make([]*bool, n)
	)
	for i := range streams {
		v := &streams[i]
		ids[i], topic[i], part[i], proto[i], svc[i], app[i], sup[i] = v.StreamID, v.Topic, int32(v.Partition), v.Protocol, v.Service, v.Application, v.Supplier
		edge[i], ca[i], ua[i], pol[i], pver[i], cu[i] = v.EdgeID, v.ClientAddr, v.UpstreamAddr, v.Policy, int32(v.PolicyVersion), v.ComputeUnits
		opened[i], closed[i], reason[i], code[i], last[i], chain[i] = v.OpenedAt, v.ClosedAt, v.CloseReason, v.CloseCode, v.LastSeq, v.Chain
		mu[i], bu[i], mc[i], bc[i], rel[i], units[i], dup[i] = v.MessagesToUpstream, v.BytesToUpstream, v.MessagesToClient, v.BytesToClient, v.Relays, v.Units, v.Duplicates
		lreq[i], lresp[i], pstate[i], complete[i] = v.LastRequestSeq, v.LastResponseSeq, v.PolicyState, v.Complete
	}
	_, err := tx.Exec(ctx, `INSERT INTO streams (`+streamColumns+`)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::text[], $12::int[], $13::bigint[], $14::timestamptz[],
			$15::timestamptz[], $16::text[], $17::int[], $18::bigint[], $19::bytea[], $20::bigint[], $21::bigint[],
			$22::bigint[], $23::bigint[], $24::bigint[], $25::bigint[], $26::bigint[], $27::bigint[],
			$28::bigint[], $29::bytea[], $30::boolean[])
		ON CONFLICT (stream_id) DO UPDATE SET closed_at = EXCLUDED.closed_at, close_reason = EXCLUDED.close_reason,
			close_code = EXCLUDED.close_code, last_seq = EXCLUDED.last_seq, chain = EXCLUDED.chain,
			messages_to_upstream = EXCLUDED.messages_to_upstream, bytes_to_upstream = EXCLUDED.bytes_to_upstream,
			messages_to_client = EXCLUDED.messages_to_client, bytes_to_client = EXCLUDED.bytes_to_client,
			relays = EXCLUDED.relays, units = EXCLUDED.units, duplicates = EXCLUDED.duplicates,
			last_request_seq = EXCLUDED.last_request_seq, last_response_seq = EXCLUDED.last_response_seq,
			policy_state = EXCLUDED.policy_state, complete = EXCLUDED.complete`,
		ids, topic, part, proto, svc, app, sup, edge, ca, ua, pol, pver, cu, opened, closed, reason, code,
		last, chain, mu, bu, mc, bc, rel, units, dup, lreq, lresp, pstate, complete)
	if err != nil {
		return fmt.Errorf("ledger: write streams: %w", err)
	}
	return nil
}
