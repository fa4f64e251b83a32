package audit

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// traffic is what the tests meter: service eth priced by method (eth_call
// 5 relays, anything else 1) at weight 2, streams of two applications over
// three minutes, one closed with its last response never forwarded (its
// usage is taken back), one left open, and an event of a stream never
// opened.
func traffic(t testing.TB, e *env, setup func(), done func() bool, opts ...func(*meter.Config)) {
	t.Helper()
	err := e.store.PutService(context.Background(), ledger.Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC",
		ComputeUnitsPerRelay: 2, Policy: ledger.Policy{Name: policy.MethodName,
			Params: json.RawMessage(`{"default": 1, "methods": {"eth_call": 5}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup()
	}
	var recs []kafka.Message
	for i := range 6 {
		g := newGen(i)
		app := "app-a"
		if i%2 == 1 {
			app = "app-b"
		}
		recs = append(recs, g.open("eth", app, "sup-1"))
		for range 10 {
			recs = append(recs, g.req(10*time.Second), g.resp(time.Second))
		}
		recs = append(recs, g.msg(event.Direction_CLIENT_TO_UPSTREAM, time.Second, "eth_blockNumber"))
		switch i {
		case 4: // left open
		case 5: // its last response never reached the client
			recs = append(recs, g.resp(time.Second))
			through := g.seq - 1
			ev := &event.Event{Body: &event.Event_Closed{Closed: &event.StreamClosed{Reason: "eof",
				MessagesToUpstream: g.up, BytesToUpstream: g.upBytes, MessagesToClient: g.down, BytesToClient: g.downBytes,
				ForwardedToClientThroughSeq: &through}}}
			recs = append(recs, g.next(ev, time.Millisecond))
		default:
			recs = append(recs, g.close())
		}
	}
	stray := newGen(99)
	stray.seq = 4 // a stream whose StreamOpened the meter never saw
	recs = append(recs, stray.req(time.Second))
	e.produce(t, recs...)
	e.meterUntil(t, done, opts...)
}

func metered(t testing.TB) *env {
	t.Helper()
	e := newEnv(t, 2)
	traffic(t, e, nil, nil)
	return e
}

func TestAuditUntouched(t *testing.T) {
	e := metered(t)
	sum := e.audit(t, Filter{})
	if sum.Events != e.n {
		t.Errorf("replayed %d events, produced %d", sum.Events, e.n)
	}
	if n := sum.Differences(); n != 0 {
		t.Fatalf("%d differences on untouched data: %+v", n, sum.Samples)
	}
	want := map[string]int64{"streams": 7, "messages": 6*21 + 1 + 1, "usage_minutes": 2*2 + 1}
	for _, ts := range sum.Tables {
		if ts.Compared != want[ts.Table] {
			t.Errorf("%s: compared %d rows, want %d", ts.Table, ts.Compared, want[ts.Table])
		}
	}
	var result string
	var events int64
	if err := e.pool.QueryRow(context.Background(), `SELECT result, events FROM audit_runs WHERE id = $1`, sum.RunID).Scan(&result, &events); err != nil {
		t.Fatal(err)
	}
	if result != "match" || events != e.n {
		t.Errorf("audit_runs: result %q, events %d; want match, %d", result, events, e.n)
	}
}

// found returns the run's findings as "kind table".
func (e *env) found(t testing.TB, run int64) []string {
	t.Helper()
	rows, err := e.pool.Query(context.Background(),
		`SELECT kind || ' ' || table_name FROM audit_findings WHERE run_id = $1 ORDER BY id`, run)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgxCollectStrings(rows)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuditFindsTampering(t *testing.T) {
	const stream = `'01000000-0000-7000-0000-000000000001'`
	for _, tc := range []struct {
		name   string
		tamper []string
		want   []string // kind table of each finding, in order
		check  func(t *testing.T, f Finding)
	}{
		{"message units changed", []string{`UPDATE messages SET units = units + 1 WHERE stream_id = ` + stream + ` AND seq = 2`},
			[]string{"differs messages"}, func(t *testing.T, f Finding) {
				var exp, got struct{ Units int64 }
				json.Unmarshal(f.Expected, &exp)
				json.Unmarshal(f.Found, &got)
				if exp.Units != 5 || got.Units != 6 {
					t.Errorf("units expected %d found %d; want 5 and 6", exp.Units, got.Units)
				}
				if string(f.Keys) != `{"seq": 2, "stream_id": "01000000-0000-7000-0000-000000000001"}` {
					t.Errorf("keys %s", f.Keys)
				}
			}},
		{"message deleted", []string{`DELETE FROM messages WHERE stream_id = ` + stream + ` AND seq = 3`},
			[]string{"missing messages"}, func(t *testing.T, f Finding) {
				if f.Found != nil || f.Expected == nil {
					t.Errorf("a missing row: expected %s, found %s", f.Expected, f.Found)
				}
			}},
		{"message inserted", []string{`INSERT INTO messages (stream_id, seq, observed_at, direction, role, method, batch_size,
				rpc_id, subscription_id, wire_size, payload_size, units)
			SELECT stream_id, 1000, observed_at, direction, role, method, batch_size, rpc_id, subscription_id, wire_size,
				payload_size, units FROM messages WHERE stream_id = ` + stream + ` AND seq = 2`},
			[]string{"extra messages"}, nil},
		{"usage changed", []string{`UPDATE usage_minutes SET units = units - 10
			WHERE minute = '2026-11-01T12:01:00Z' AND application = 'app-b'`},
			[]string{"differs usage_minutes"}, nil},
		{"stream relays changed", []string{`UPDATE streams SET relays = relays + 5 WHERE stream_id = ` + stream},
			[]string{"differs streams"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := metered(t)
			e.exec(t, tc.tamper...)
			sum := e.audit(t, Filter{})
			got := e.found(t, sum.RunID)
			if len(got) != len(tc.want) {
				t.Fatalf("findings %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("finding %d: %q, want %q", i, got[i], tc.want[i])
				}
			}
			if sum.Differences() != int64(len(tc.want)) {
				t.Errorf("summary counts %d differences, want %d", sum.Differences(), len(tc.want))
			}
			if tc.check != nil && len(sum.Samples) > 0 {
				tc.check(t, sum.Samples[0])
			}
		})
	}
}
