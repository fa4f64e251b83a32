package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/internal/ethsim"
	"github.com/relaymeter/relaymeter/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestEndToEnd sends JSON-RPC traffic with subscriptions through a real
// edge in front of a real upstream, through Kafka and the meter, and reads
// exact counts back through GraphQL.
func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	node := ethsim.New(ethsim.Config{HeadInterval: -1})
	up, err := listen("node", "127.0.0.1:0", node)
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestStack(t, ctx, "e2e", "ws://"+up.addr()+"/",
		func(ctx context.Context) error { node.Run(ctx); return nil }, up.serve)

	// A raw WebSocket client, speaking JSON-RPC by hand as any library does.
	conn, _, err := websocket.Dial(ctx, "ws://"+ts.edge+"/app-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	sent, received := 0, 0
	call := func(req string) string {
		t.Helper()
		if err := conn.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
			t.Fatal(err)
		}
		sent++
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		received++
		return string(b)
	}
	if got := call(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`); !strings.Contains(got, `"0x1"`) {
		t.Fatalf("eth_chainId through the edge: %s", got)
	}
	sub := call(`{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["newHeads"]}`)
	var subRes struct{ Result string }
	if err := json.Unmarshal([]byte(sub), &subRes); err != nil || subRes.Result == "" {
		t.Fatalf("eth_subscribe: %s (%v)", sub, err)
	}
	const heads = 5
	for range heads {
		node.Tick()
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		received++
		if !bytes.Contains(b, []byte(subRes.Result)) {
			t.Fatalf("notification for another subscription: %s", b)
		}
	}
	for i := range 10 {
		call(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_blockNumber","params":[]}`, 10+i))
	}
	call(fmt.Sprintf(`{"jsonrpc":"2.0","id":99,"method":"eth_unsubscribe","params":[%q]}`, subRes.Result))
	if err := conn.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	frames := sent + received // 13 requests, 13 responses, 5 notifications

	// The message policy makes one relay and one unit per message.
	want := usageCounts{Messages: int64(frames), Relays: int64(frames), Units: int64(frames)}
	got := waitUsage(t, ctx, "http://"+ts.api, "test-key", `{service:"eth", application:"app-1"}`, want.Messages)
	if got.Messages != want.Messages || got.Relays != want.Relays || got.Units != want.Units || got.Bytes <= 0 {
		t.Fatalf("usage = %+v, want %+v with bytes > 0", got, want)
	}
}

type usageCounts struct{ Messages, Relays, Units, Bytes int64 }

// waitUsage polls the GraphQL usage query until messages reaches want (or
// passes it, which the caller's comparison then reports).
func waitUsage(t *testing.T, ctx context.Context, base, key, filter string, want int64) usageCounts {
	t.Helper()
	var u usageCounts
	for {
		var resp struct {
			Data struct {
				Usage usageCounts `json:"usage"`
			}
			Errors []struct{ Message string }
		}
		gqlPost(t, ctx, base, key, `{ usage(filter: `+filter+`) { messages relays units bytes } }`, &resp)
		if len(resp.Errors) > 0 {
			t.Fatalf("usage query: %v", resp.Errors)
		}
		u = resp.Data.Usage
		if u.Messages >= want {
			return u
		}
		select {
		case <-ctx.Done():
			t.Fatalf("usage stayed at %+v, want %d messages", u, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func gqlPost(t *testing.T, ctx context.Context, base, key, query string, out any) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("graphql: HTTP %d: %s", res.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("graphql: %v: %s", err, b)
	}
}

// TestHostileStringsEndToEnd: a client that names the application "%00"
// and calls a method with a NUL in it, beside a well-behaved one, stops
// nobody: both are metered exactly, the hostile strings stored cleaned, and
// nothing is quarantined.
func TestHostileStringsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	node := ethsim.New(ethsim.Config{HeadInterval: -1})
	up, err := listen("node", "127.0.0.1:0", node)
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestStack(t, ctx, "hostile", "ws://"+up.addr()+"/", up.serve)
	send := func(path string, reqs ...string) {
		t.Helper()
		conn, _, err := websocket.Dial(ctx, "ws://"+ts.edge+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			if err := conn.Write(ctx, websocket.MessageText, []byte(r)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := conn.Read(ctx); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close(websocket.StatusNormalClosure, "")
	}
	send("/%00", `{"jsonrpc":"2.0","id":1,"method":"eth_\u0000"}`, `{"jsonrpc":"2.0","id":"\u0000\u0000","method":"eth_chainId"}`)
	send("/good-app", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, `{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}`)
	ts.settled(t)
	waitMetered(t, ts.pool, ts.cluster.Brokers, "relaymeter-meter")
	for _, c := range []struct {
		q    string
		want int64
	}{
		{`SELECT count(*) FROM messages`, 8},
		{`SELECT coalesce(sum(messages), 0) FROM usage_minutes WHERE application = 'good-app'`, 4},
		{`SELECT coalesce(sum(messages), 0) FROM usage_minutes WHERE application = '` + "\uFFFD" + `'`, 4},
		{`SELECT count(*) FROM messages WHERE method = 'eth_` + "\uFFFD" + `'`, 1},
		{`SELECT count(*) FROM messages WHERE rpc_id = '"` + "\uFFFD\uFFFD" + `"' OR rpc_id LIKE '"\\u0000%'`, 2},
		{`SELECT count(*) FROM quarantine`, 0},
		{`SELECT count(*) FROM findings`, 0},
		{`SELECT count(*) FROM streams WHERE complete`, 2},
	} {
		var n int64
		if err := ts.pool.QueryRow(ctx, c.q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		if n != c.want {
			t.Errorf("%s = %d, want %d", c.q, n, c.want)
		}
	}
}
