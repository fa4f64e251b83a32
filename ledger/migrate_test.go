package ledger

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/migrations"
)

// TestMessagesAreTheRelaysMigration: 00003 turns a ledger of relays rows
// into messages that derive them, keeping every relay (id, order, pairing,
// weight, policy), and its Down gives the relays back.
func TestMessagesAreTheRelaysMigration(t *testing.T) {
	pool, _ := pgtest.DB(t)
	ctx := context.Background()
	downTo(t, pool, 2)
	// A ledger as 00002 left it: stream A paired (its first request waited
	// for the response that followed, and was filled), stream B closed
	// with a request never answered, a bytes service with params.
	for _, q := range []string{
		`INSERT INTO services (id, protocol, policy, policy_version, policy_params, compute_units_per_relay)
			VALUES ('eth', 'WEBSOCKET_JSONRPC', 'message', 1, '{}', 3), ('up', 'WEBSOCKET_JSONRPC', 'bytes', 1, '{"block": 100}', 1)`,
		`INSERT INTO streams (stream_id, topic, kafka_partition, protocol, service, application, supplier, edge_id,
			policy, policy_version, compute_units, opened_at, closed_at, last_seq, chain, relays, units,
			last_request_seq, last_response_seq, complete)
			VALUES ('01900000-0000-7000-8000-00000000000a', 't', 0, 'WEBSOCKET_JSONRPC', 'eth', 'app', 'sup', 'e', 'message', 1, 3,
				'2026-01-01', NULL, 4, '\x01', 3, 9, 4, 3, NULL),
			('01900000-0000-7000-8000-00000000000b', 't', 1, 'WEBSOCKET_JSONRPC', 'up', 'app', 'sup', 'e', 'bytes', 1, 1,
				'2026-01-01', '2026-01-01 00:10', 2, '\x02', 2, 2, 2, NULL, false)`,
		`INSERT INTO messages (stream_id, seq, observed_at, direction, role, wire_size, payload_size, units) VALUES
			('01900000-0000-7000-8000-00000000000a', 2, '2026-01-01 00:01', 'CLIENT_TO_UPSTREAM', 'REQUEST', 10, 10, 1),
			('01900000-0000-7000-8000-00000000000a', 3, '2026-01-01 00:02', 'UPSTREAM_TO_CLIENT', 'RESPONSE', 10, 10, 1),
			('01900000-0000-7000-8000-00000000000a', 4, '2026-01-01 00:03', 'CLIENT_TO_UPSTREAM', 'REQUEST', 10, 10, 1),
			('01900000-0000-7000-8000-00000000000b', 2, '2026-01-01 00:04', 'CLIENT_TO_UPSTREAM', 'REQUEST', 150, 150, 2)`,
		`INSERT INTO relays (relay_id, stream_id, seq, unit_index, request_seq, response_seq, unpaired, protocol, service,
			application, supplier, weight, policy, policy_version, observed_at)
			SELECT sha256(uuid_send(m.stream_id) || int8send(m.seq) || int4send(u.i::int)), m.stream_id, m.seq, u.i,
				CASE m.seq WHEN 3 THEN 2 ELSE m.seq END,
				CASE WHEN m.stream_id = '01900000-0000-7000-8000-00000000000b' THEN NULL ELSE 3 END,
				m.stream_id = '01900000-0000-7000-8000-00000000000b', 'WEBSOCKET_JSONRPC', s.service, 'app', 'sup',
				s.compute_units, s.policy, 1, m.observed_at
			FROM messages m JOIN streams s USING (stream_id), generate_series(0, m.units - 1) u(i)
			ORDER BY m.observed_at, u.i`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	const relaysBefore = `SELECT string_agg(concat_ws('|', encode(relay_id, 'hex'), seq, unit_index, coalesce(request_seq, 0),
		coalesce(response_seq, 0), unpaired, weight, policy), ';' ORDER BY stream_id, seq, unit_index) FROM relays`
	var before string
	if err := pool.QueryRow(ctx, relaysBefore).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
	s := New(pool)
	p, err := s.ListRelays(ctx, RelayFilter{Scope: All}, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var after string
	for i, r := range p.Items {
		if i > 0 {
			after += ";"
		}
		id := r.ID()
		after += concat(hexOf(id[:]), r.Seq, r.UnitIndex, r.RequestSeq.V, r.ResponseSeq.V, r.Pairing == PairingUnpaired, r.Weight, r.Policy)
	}
	if after != before {
		t.Fatalf("relays after 00003:\n%s\nwant\n%s", after, before)
	}
	svcs, _, err := s.Services(ctx)
	if err != nil || len(svcs) != 2 || svcs[1].Policy.Name != "bytes" || string(svcs[1].Policy.Params) != `{"block": 100}` {
		t.Fatalf("services after 00003: %+v, %v", svcs, err)
	}
	streams, err := s.ListStreams(ctx, StreamFilter{Scope: All}, 10, "")
	if err != nil || len(streams.Items) != 2 {
		t.Fatalf("streams: %+v, %v", streams, err)
	}
	for _, st := range streams.Items {
		if st.PolicyID == 0 || st.LastObservedAt.IsZero() || st.Version != 1 {
			t.Errorf("stream %s after 00003: %+v", st.StreamID, st)
		}
	}
	// Stream A's first request waited for seq 3: its first counterpart.
	var first int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(first_counterpart_seq, 0) FROM streams ORDER BY stream_id LIMIT 1`).Scan(&first); err != nil || first != 3 {
		t.Fatalf("first counterpart %d, %v; want 3", first, err)
	}
	downTo(t, pool, 2)
	var down string
	if err := pool.QueryRow(ctx, relaysBefore).Scan(&down); err != nil {
		t.Fatal(err)
	}
	if down != before {
		t.Fatalf("relays after 00003 down:\n%s\nwant\n%s", down, before)
	}
	if err := migrations.Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// concat joins values with '|' as Postgres' concat_ws prints them.
func concat(vs ...any) string {
	var out string
	for i, v := range vs {
		if i > 0 {
			out += "|"
		}
		switch x := v.(type) {
		case bool:
			if x {
				out += "t"
			} else {
				out += "f"
			}
		default:
			out += fmt.Sprint(x)
		}
	}
	return out
}

// downTo migrates pool down until version is the latest applied, however
// many migrations follow it.
func downTo(t *testing.T, pool *pgxpool.Pool, version int64) {
	t.Helper()
	ctx := context.Background()
	for {
		var current int64
		if err := pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version`).Scan(&current); err != nil {
			t.Fatal(err)
		}
		if current <= version {
			return
		}
		if err := migrations.Down(ctx, pool); err != nil {
			t.Fatalf("down from %d: %v", current, err)
		}
	}
}

// TestVersionsAndTariffsMigration: 00005 moves each service's policy into
// its version history (in force since ever) and a price set by hand into
// its first tariff (currency XXX), and its Down gives both back.
func TestVersionsAndTariffsMigration(t *testing.T) {
	pool, _ := pgtest.DB(t)
	ctx := context.Background()
	downTo(t, pool, 4)
	for _, q := range []string{
		`INSERT INTO policies (id, name, version, params) VALUES (201, 'message', 1, '{}'), (202, 'bytes', 1, '{"block": 10}')
			ON CONFLICT DO NOTHING`,
		`INSERT INTO services (id, protocol, policy_id, price_per_unit) VALUES
			('eth', 'WEBSOCKET_JSONRPC', 201, 0), ('pool', 'STRATUM_V2', 202, 12.5)`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	if err := migrations.Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(ctx, `SELECT string_agg(concat_ws('|', service, policy_id, effective_from), ';' ORDER BY service)
		FROM service_policies`).Scan(&got); err != nil || got != "eth|201|-infinity;pool|202|-infinity" {
		t.Fatalf("service_policies %q, %v", got, err)
	}
	if err := pool.QueryRow(ctx, `SELECT string_agg(concat_ws('|', service, price_per_unit, currency, effective_from), ';')
		FROM tariffs`).Scan(&got); err != nil || got != "pool|12.500000000000000000|XXX|-infinity" {
		t.Fatalf("tariffs %q, %v", got, err)
	}
	downTo(t, pool, 4)
	if err := pool.QueryRow(ctx, `SELECT string_agg(concat_ws('|', id, policy_id, price_per_unit), ';' ORDER BY id)
		FROM services`).Scan(&got); err != nil || got != "eth|201|0.000000000000000000;pool|202|12.500000000000000000" {
		t.Fatalf("services after Down %q, %v", got, err)
	}
}
