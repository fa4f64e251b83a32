package ledger

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/internal/pgtest"
)

// BenchmarkUsageSeries measures a day of usage by hour for one application
// of ten: from the rollups, and by method from the messages (500,000 over
// 200 streams, four methods), which is what METHOD costs.
func BenchmarkUsageSeries(b *testing.B) {
	pool, _ := pgtest.DB(b)
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO policies (id, name, version) VALUES (1, 'message', 1)`,
		`INSERT INTO streams (stream_id, topic, kafka_partition, protocol, service, application, supplier, edge_id,
			policy_id, compute_units, opened_at, state_version, last_seq, chain, last_observed_at, relays)
		SELECT ('01900000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 't', 0, 'WEBSOCKET_JSONRPC', 'eth',
			'app' || (g % 10), 'sup' || (g % 3), 'e', 1, 1, $1, 1, 2500, '\x00', $1, 2500
		FROM generate_series(1, 200) g`,
		`INSERT INTO messages (stream_id, seq, observed_at, direction, role, method, wire_size, payload_size, units)
		SELECT ('01900000-0000-7000-8000-' || lpad(to_hex(1 + g % 200), 12, '0'))::uuid, 1 + g / 200,
			$1::timestamptz + g * interval '172 milliseconds', 1, 1, (ARRAY['eth_call', 'eth_getBalance', 'eth_blockNumber', 'eth_subscribe'])[1 + g % 4],
			120, 100, 1
		FROM generate_series(0, 499999) g`,
		`INSERT INTO usage_minutes (minute, protocol, service, application, supplier, messages, relays, units, bytes)
		SELECT date_trunc('minute', m.observed_at), s.protocol, s.service, s.application, s.supplier,
			count(*), sum(m.units), sum(m.units), sum(m.wire_size)
		FROM messages m JOIN streams s USING (stream_id) GROUP BY 1, 2, 3, 4, 5`,
		`ANALYZE`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{at}
		}
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	s := New(pool)
	day := UsageFilter{Scope: Scope{Application: "app3"}, From: at, To: at.Add(24 * time.Hour)}
	for _, bc := range []struct {
		name  string
		group []UsageGroup
		rows  int
	}{
		{"rollups/hour", nil, 24},
		{"messages/hour×method", []UsageGroup{GroupMethod}, 48}, // app3's streams call two of the methods
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				rows, err := s.UsageSeries(ctx, UsageSeriesQuery{Filter: day, Window: WindowHour, GroupBy: bc.group, Limit: 10_000})
				if err != nil || len(rows) != bc.rows {
					b.Fatalf("%d rows, %v", len(rows), err)
				}
			}
		})
	}
}
