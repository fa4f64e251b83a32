package meter

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/ingest/ws"
	"github.com/relaymeter/relaymeter/internal/ethsim"
	"github.com/relaymeter/relaymeter/ledger"
)

// TestEdgeAnswersUnbilled runs a real WebSocket edge (ingest/ws) with
// limits, recording into Kafka, against a simulated node, and meters its
// stream into Postgres: a client that hits every limit the edge answers
// itself (a batch too large, a denied method, the rate limit, a denied
// notification) is billed, with the message policy, exactly for the
// requests forwarded and the node's answers to them. The edge's answers
// count as messages the client received, with 0 relays; the requests it
// answered are recorded, absorbed, uncounted; nothing pairs with either;
// and the close, whose forwarded-through seq stops before the last
// absorbed messages, takes back nothing.
func TestEdgeAnswersUnbilled(t *testing.T) {
	e := newEnv(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.store.PutService(ctx, ledger.Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC"}); err != nil {
		t.Fatal(err)
	}
	node := ethsim.New(ethsim.Config{HeadInterval: -1})
	up := httptest.NewServer(node)
	defer up.Close()
	rec, err := record.New(record.Config{Brokers: e.brokers, Topic: e.topic, EdgeID: "edge"})
	if err != nil {
		t.Fatal(err)
	}
	edge, err := ws.New(ws.Config{Recorder: rec, Upstream: "ws" + strings.TrimPrefix(up.URL, "http"), Service: "eth",
		Supplier: "sup", OpenAccess: true, Limits: ws.Limits{MaxBatch: 2, DenyMethods: []string{"admin_*"},
			MessagesPerSecond: 0.001, MessageBurst: 5}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(edge)
	defer srv.Close()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/app", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Each step: what the client sends, and the start of what it gets back
	// ("" for nothing). The bucket holds 5 messages.
	for _, step := range []struct{ send, want string }{
		{`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, `{"jsonrpc":"2.0","id":1,"result"`},                                                                                                                    // forwarded
		{`[{"jsonrpc":"2.0","id":2,"method":"eth_chainId"},{"jsonrpc":"2.0","id":3,"method":"eth_chainId"},{"jsonrpc":"2.0","id":4,"method":"eth_chainId"}]`, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600`}, // the edge's
		{`{"jsonrpc":"2.0","id":5,"method":"admin_nodeInfo"}`, `{"jsonrpc":"2.0","id":5,"error":{"code":-32601`},                                                                                                   // the edge's
		{`[{"jsonrpc":"2.0","id":6,"method":"eth_chainId"},{"jsonrpc":"2.0","id":7,"method":"net_version"}]`, `[{"jsonrpc":"2.0","id":6,"result"`},                                                                 // forwarded
		{`{"jsonrpc":"2.0","id":8,"method":"eth_blockNumber"}`, `{"jsonrpc":"2.0","id":8,"result"`},                                                                                                                // forwarded, the last token
		{`{"jsonrpc":"2.0","id":9,"method":"eth_chainId"}`, `{"jsonrpc":"2.0","id":9,"error":{"code":-32005`},                                                                                                      // the edge's
		{`{"jsonrpc":"2.0","method":"admin_addPeer"}`, ``},                                                                                                                                                         // absorbed, unanswered
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(step.send)); err != nil {
			t.Fatal(err)
		}
		if step.want == "" {
			continue
		}
		_, got, err := c.Read(ctx)
		if err != nil || !strings.HasPrefix(string(got), step.want) {
			t.Fatalf("sent %s: got %s (%v), want %s…", step.send, got, err, step.want)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	if err := edge.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}

	r := start(e.meter(t, nil))
	defer r.stop(t)
	deadline := time.Now().Add(60 * time.Second)
	for e.count(t, `SELECT count(*) FROM streams WHERE closed_at IS NOT NULL`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the stream was not metered closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// 7 client messages (3 forwarded, 4 absorbed), 3 answers of the node,
	// 3 of the edge.
	for q, want := range map[string]int64{
		`SELECT count(*) FROM messages`:                                                         13,
		`SELECT count(*) FROM messages WHERE absorbed_by_edge`:                                  4,
		`SELECT count(*) FROM messages WHERE absorbed_by_edge AND direction = 1 AND origin = 1`: 4,
		`SELECT count(*) FROM messages WHERE origin = 3 AND direction = 2 AND role = 4`:         3,
		`SELECT count(*) FROM messages WHERE origin = 2`:                                        3,
		`SELECT coalesce(sum(units), 0) FROM messages WHERE origin = 3 OR absorbed_by_edge`:     0,
		`SELECT coalesce(sum(units), 0) FROM messages`:                                          6,
		// Nothing pairs with the edge's messages, nor they with anything.
		`SELECT count(*) FROM messages m JOIN streams s USING (stream_id)
			JOIN messages o ON o.stream_id = m.stream_id AND o.seq = coalesce(m.counterpart_seq, s.first_counterpart_seq)
			WHERE m.units > 0 AND (o.origin = 3 OR o.absorbed_by_edge)`: 0,
		`SELECT count(*) FROM messages WHERE (origin = 3 OR absorbed_by_edge) AND counterpart_seq IS NOT NULL`: 0,
		// The close stops before the last two client messages, absorbed.
		`SELECT count(*) FROM messages m JOIN streams s USING (stream_id)
			WHERE m.direction = 1 AND m.seq > s.forwarded_to_upstream_seq`: 2,
		// Usage: the forwarded requests, the node's answers and the
		// edge's answers; 6 relays.
		`SELECT sum(messages) FROM usage_minutes WHERE application = 'app'`: 9,
		`SELECT sum(relays) FROM usage_minutes WHERE application = 'app'`:   6,
		`SELECT relays FROM streams`:                                        6,
	} {
		if got := e.count(t, q); got != want {
			t.Errorf("%s: %d, want %d", q, got, want)
		}
	}
	var st *ledger.Stream
	if p, err := e.store.ListStreams(ctx, ledger.StreamFilter{Scope: ledger.All}, 10, ""); err != nil || len(p.Items) != 1 {
		t.Fatalf("streams: %v", err)
	} else {
		st = &p.Items[0]
	}
	if n, err := e.store.CrossedRelays(ctx, st); err != nil || n != 6 {
		t.Fatalf("crossed relays %d (%v), want 6", n, err)
	}
	if got := len(e.relays(t, st.StreamID)); got != 6 {
		t.Fatalf("%d relays listed, want 6", got)
	}
}
