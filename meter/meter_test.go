package meter

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter/policy/policytest"
)

func TestConfigValidate(t *testing.T) {
	store := ledger.New(nil)
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Brokers: []string{"b:9092"}, Store: store}, true},
		{"no brokers", Config{Store: store}, false},
		{"no store", Config{Brokers: []string{"b:9092"}}, false},
		{"negative batch", Config{Brokers: []string{"b:9092"}, Store: store, BatchSize: -1}, false},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != tc.ok {
			t.Fatalf("%s: err = %v", tc.name, err)
		}
		if tc.ok && (tc.cfg.Topic != DefaultTopic || tc.cfg.GroupID != DefaultGroupID ||
			tc.cfg.BatchSize != DefaultBatchSize || tc.cfg.BatchWait != DefaultBatchWait) {
			t.Fatalf("%s: defaults not filled: %+v", tc.name, tc.cfg)
		}
	}
}

// TestMeterEndToEnd meters three streams through Kafka and checks every row
// the meter writes.
func TestMeterEndToEnd(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	if err := e.store.PutService(ctx, ledger.Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC", ComputeUnitsPerRelay: 3}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutService(ctx, ledger.Service{ID: "lines", Protocol: "WEBSOCKET_JSONRPC", Policy: ledger.Policy{Name: policytest.LinesName}, ComputeUnitsPerRelay: 2}); err != nil {
		t.Fatal(err)
	}
	a, b, c := newGen(1), newGen(2), newGen(3)
	recs := []kafka.Message{
		a.open("eth", "app1", "sup1"), b.open("lines", "app2", "sup1"), c.open("ghost", "app1", "sup2"),
		a.req(), b.msg(up, 1, 10, "a\nb"), a.resp(), c.req(), a.req(), b.msg(down, 2, 20, "c\n"), a.note(),
		a.close(), b.close(), c.close(),
	}
	e.produce(t, recs...)
	m := e.meter(t, nil)
	r := start(m)
	e.waitCommitted(t, int64(len(recs)))
	r.stop(t)

	// messages
	if n := e.count(t, `SELECT count(*) FROM messages`); n != 7 {
		t.Fatalf("messages: %d rows, want 7", n)
	}
	var dir, role int16
	var method string
	var wire, units int64
	if err := e.pool.QueryRow(ctx, `SELECT direction, role, method, wire_size, units FROM messages WHERE stream_id = $1 AND seq = 3`, a.id).
		Scan(&dir, &role, &method, &wire, &units); err != nil {
		t.Fatal(err)
	}
	if dir != int16(event.Direction_UPSTREAM_TO_CLIENT) || role != int16(event.Role_RESPONSE) || method != "eth_call" || wire != 300 || units != 1 {
		t.Fatalf("message a/3: %d %d %s %d %d", dir, role, method, wire, units)
	}

	// relays: pairing, ids, weights, policy
	type relay struct {
		seq, req, resp, weight int64
		unpaired               bool
		policy                 string
	}
	relays := func(id [16]byte) (out []relay) {
		sid := uuid.UUID(id)
		p, err := e.store.ListRelays(ctx, ledger.RelayFilter{Scope: ledger.All, StreamID: &sid}, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Items {
			if want := ledger.RelayID(sid, uint64(r.Seq), uint32(r.UnitIndex)); r.ID() != want {
				t.Fatalf("relay %d/%d: id %x, want %x", r.Seq, r.UnitIndex, r.ID(), want)
			}
			out = append(out, relay{r.Seq, r.RequestSeq.V, r.ResponseSeq.V, r.Weight, r.Pairing == ledger.PairingUnpaired, r.Policy})
		}
		return out
	}
	for _, tc := range []struct {
		id   [16]byte
		want []relay
	}{
		{a.id, []relay{{2, 2, 3, 3, false, "message"}, {3, 2, 3, 3, false, "message"}, {4, 4, 3, 3, false, "message"}, {5, 4, 5, 3, false, "message"}}},
		{b.id, []relay{{2, 2, 3, 2, false, "test-lines"}, {3, 2, 3, 2, false, "test-lines"}}},
		{c.id, []relay{{2, 2, 0, 1, true, "message"}}},
	} {
		if got := relays(tc.id); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Fatalf("stream %x relays\n got %v\nwant %v", tc.id[15], got, tc.want)
		}
	}

	// usage_minutes
	rows, err := e.pool.Query(ctx, `SELECT minute, protocol, service, application, supplier, messages, relays, units, bytes
		FROM usage_minutes ORDER BY service`)
	if err != nil {
		t.Fatal(err)
	}
	var usage []string
	for rows.Next() {
		var minute time.Time
		var proto, svc, app, sup string
		var msgs, rel, un, by int64
		if err := rows.Scan(&minute, &proto, &svc, &app, &sup, &msgs, &rel, &un, &by); err != nil {
			t.Fatal(err)
		}
		usage = append(usage, fmt.Sprintf("%s %s %s %s %s %d/%d/%d/%d", minute.UTC().Format("15:04"), proto, svc, app, sup, msgs, rel, un, by))
	}
	want := []string{
		"12:00 WEBSOCKET_JSONRPC eth app1 sup1 4/4/12/550",
		"12:00 WEBSOCKET_JSONRPC ghost app1 sup2 1/1/1/100",
		"12:00 WEBSOCKET_JSONRPC lines app2 sup1 2/2/4/30",
	}
	if fmt.Sprint(usage) != fmt.Sprint(want) {
		t.Fatalf("usage\n got %v\nwant %v", usage, want)
	}

	// streams
	var st []string
	rows, err = e.pool.Query(ctx, `SELECT service, p.name, compute_units, last_seq, messages_to_upstream, bytes_to_upstream,
		messages_to_client, bytes_to_client, relays, relays * compute_units, duplicates, coalesce(last_request_seq, 0),
		coalesce(last_response_seq, 0), policy_state = '', complete, closed_at IS NOT NULL, close_reason
		FROM streams s JOIN policies p ON p.id = s.policy_id ORDER BY stream_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var svc, pol, reason string
		var cu, last, mu, bu, mc, bc, rel, un, dup, lreq, lresp int64
		var noState, complete, closed bool
		if err := rows.Scan(&svc, &pol, &cu, &last, &mu, &bu, &mc, &bc, &rel, &un, &dup, &lreq, &lresp, &noState, &complete, &closed, &reason); err != nil {
			t.Fatal(err)
		}
		st = append(st, fmt.Sprint(svc, pol, cu, last, mu, bu, mc, bc, rel, un, dup, lreq, lresp, noState, complete, closed, reason))
	}
	wantStreams := []string{
		fmt.Sprint("eth", "message", 3, 6, 2, 200, 2, 350, 4, 12, 0, 4, 5, true, true, true, "eof"),
		fmt.Sprint("lines", "test-lines", 2, 4, 1, 10, 1, 20, 2, 4, 0, 2, 3, true, true, true, "eof"),
		fmt.Sprint("ghost", "message", 1, 3, 1, 100, 0, 0, 1, 1, 0, 2, 0, true, true, true, "eof"),
	}
	if fmt.Sprint(st) != fmt.Sprint(wantStreams) {
		t.Fatalf("streams\n got %v\nwant %v", st, wantStreams)
	}

	// findings: the unknown service, once
	var kind string
	var seq int64
	if err := e.pool.QueryRow(ctx, `SELECT kind, seq FROM findings WHERE stream_id = $1`, c.id).Scan(&kind, &seq); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, `SELECT count(*) FROM findings`); n != 1 || kind != FindingUnknownService || seq != 1 {
		t.Fatalf("findings: %d, %s at %d; want one unknown_service at 1", n, kind, seq)
	}
	// offsets: one row per partition that had records, summing to all of them
	if n := e.count(t, `SELECT count(*) FROM consumer_offsets WHERE group_id = $1 AND topic = $2`, DefaultGroupID, e.topic); n < 1 || n > 2 {
		t.Fatalf("consumer_offsets: %d rows", n)
	}
	if got := counter(t, m.cfg.Registerer.(prometheus.Gatherer), "relaymeter_meter_relays_total"); got != 7 {
		t.Fatalf("relays_total = %v, want 7", got)
	}
}

// TestRemainder: a stream that closes while its policy carries a partial
// record gets a remainder finding saying so, and the partial record is no
// unit.
func TestRemainder(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	if err := e.store.PutService(ctx, ledger.Service{ID: "lines", Protocol: "WEBSOCKET_JSONRPC", Policy: ledger.Policy{Name: policytest.LinesName}, ComputeUnitsPerRelay: 1}); err != nil {
		t.Fatal(err)
	}
	a, b := newGen(1), newGen(2)
	e.produce(t, a.open("lines", "app", "sup"), a.msg(up, 1, 10, "one\ntw"), a.msg(up, 1, 10, "o\nthr"), a.close(),
		b.open("lines", "app", "sup"), b.msg(up, 1, 10, "x\n"), b.close())
	m := e.meter(t, nil)
	r := start(m)
	e.waitCommitted(t, 7)
	r.stop(t)
	var detail string
	if err := e.pool.QueryRow(ctx, `SELECT detail FROM findings WHERE kind = $1 AND stream_id = $2`, FindingRemainder, uuidString(a.id)).Scan(&detail); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, "3 bytes after the last newline") {
		t.Fatalf("remainder detail %q", detail)
	}
	if n := e.count(t, `SELECT count(*) FROM findings`); n != 1 {
		t.Fatalf("%d findings, want only the one remainder (stream b ended on a newline)", n)
	}
	if n := e.count(t, `SELECT relays FROM streams WHERE stream_id = $1`, uuidString(a.id)); n != 2 {
		t.Fatalf("stream a has %d relays, want 2: the partial record is no unit", n)
	}
}
