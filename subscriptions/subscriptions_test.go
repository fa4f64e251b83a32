package subscriptions_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/subscriptions"
)

func head(sub string, n int, hash string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":%s,"result":{"number":"0x%x","hash":"%s","parentHash":"0x00"}}}`, sub, n, hash)
}

// open subscribes through c as the client id and the upstream answer up.
func open(t *testing.T, c *subscriptions.Conn, seq uint64, id, params, up string) string {
	t.Helper()
	req := `{"jsonrpc":"2.0","id":` + id + `,"method":"eth_subscribe","params":` + params + `}`
	if v, ans := c.FromClient(seq, []byte(req)); v != subscriptions.Forward {
		t.Fatalf("subscribe: %v %s", v, ans)
	}
	out, v := c.FromUpstream([]byte(`{"jsonrpc":"2.0","id":` + id + `,"result":` + up + `}`))
	if v != subscriptions.Forward {
		t.Fatalf("subscribe answer: %v", v)
	}
	var r struct{ Result string }
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("answer %s: %v", out, err)
	}
	return `"` + r.Result + `"`
}

func fromUpstream(t *testing.T, c *subscriptions.Conn, msg string) (string, subscriptions.Verdict) {
	t.Helper()
	out, v := c.FromUpstream([]byte(msg))
	if !json.Valid(out) {
		t.Fatalf("FromUpstream(%s) = %s: not JSON", msg, out)
	}
	return string(out), v
}

// move loses the upstream after the client's messages through written,
// re-creates every subscription and answers each re-subscription with the
// upstream ids of answer (by original params), returning the answers Lost
// gave.
func move(t *testing.T, c *subscriptions.Conn, written uint64, answer map[string]string) []string {
	t.Helper()
	var lost []string
	for _, b := range c.Lost(written) {
		lost = append(lost, string(b))
	}
	reqs := c.Resubscribe()
	if c.Ready() != (len(reqs) == 0) {
		t.Fatalf("Ready before the re-subscriptions are answered")
	}
	for _, req := range reqs {
		var r struct {
			ID     json.RawMessage
			Method string
			Params json.RawMessage
		}
		if err := json.Unmarshal(req, &r); err != nil || r.Method != "eth_subscribe" {
			t.Fatalf("re-subscription %s: %v", req, err)
		}
		up, ok := answer[string(r.Params)]
		if !ok {
			t.Fatalf("re-subscription with params %s: not the original", r.Params)
		}
		if _, v := fromUpstream(t, c, `{"jsonrpc":"2.0","id":`+string(r.ID)+`,"result":`+up+`}`); v != subscriptions.Absorb {
			t.Fatalf("re-subscription answer: %v, want absorb", v)
		}
	}
	if !c.Ready() {
		t.Fatal("not Ready once every re-subscription is answered")
	}
	return lost
}

func TestMoveKeepsLocalIDs(t *testing.T) {
	c := subscriptions.New(subscriptions.Config{})
	heads := open(t, c, 1, "1", `["newHeads"]`, `"0xa1"`)
	logs := open(t, c, 2, "2", `["logs",{"address":"0x01"}]`, `"0xa2"`)
	if heads != `"0xa1"` || logs != `"0xa2"` {
		t.Fatalf("local ids %s %s: want the upstream's before any move", heads, logs)
	}
	// Before a move, notifications pass unchanged, byte for byte.
	n := head(`"0xa1"`, 1, "0xh1")
	if out, v := fromUpstream(t, c, n); out != n || v != subscriptions.Forward {
		t.Fatalf("notification: %v %s", v, out)
	}

	move(t, c, 2, map[string]string{`["newHeads"]`: `"0xb7"`, `["logs",{"address":"0x01"}]`: `"0xb8long"`})

	// The new upstream's ids become the local ones, everything else intact.
	if out, v := fromUpstream(t, c, head(`"0xb7"`, 2, "0xh2")); v != subscriptions.Forward || out != head(`"0xa1"`, 2, "0xh2") {
		t.Fatalf("after move: %v %s", v, out)
	}
	logN := `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xb8long","result":{"data":"0x"}}}`
	if out, _ := fromUpstream(t, c, logN); out != strings.Replace(logN, `"0xb8long"`, `"0xa2"`, 1) {
		t.Fatalf("logs after move: %s", out)
	}
	// eth_unsubscribe names the local id; the upstream gets its own.
	unsub := []byte(`{"jsonrpc":"2.0","id":9,"method":"eth_unsubscribe","params":["0xa2"]}`)
	v, _ := c.FromClient(3, unsub)
	if v != subscriptions.Rewrite {
		t.Fatalf("unsubscribe: %v, want rewrite", v)
	}
	if got := string(c.ToUpstream(unsub)); got != `{"jsonrpc":"2.0","id":9,"method":"eth_unsubscribe","params":["0xb8long"]}` {
		t.Fatalf("unsubscribe upstream: %s", got)
	}
	fromUpstream(t, c, `{"jsonrpc":"2.0","id":9,"result":true}`)
	if c.Len() != 1 {
		t.Fatalf("%d subscriptions after unsubscribe, want 1", c.Len())
	}
	// A notification of an id nobody knows passes unchanged.
	if out, _ := fromUpstream(t, c, logN); out != logN {
		t.Fatalf("unknown subscription rewritten: %s", out)
	}
}

func TestHeadsDedupedAfterMove(t *testing.T) {
	c := subscriptions.New(subscriptions.Config{HeadWindow: 4})
	open(t, c, 1, "1", `["newHeads"]`, `"0x1"`)
	for i := 1; i <= 3; i++ {
		if _, v := fromUpstream(t, c, head(`"0x1"`, i, fmt.Sprintf("0xh%d", i))); v != subscriptions.Forward {
			t.Fatalf("head %d: %v", i, v)
		}
	}
	move(t, c, 1, map[string]string{`["newHeads"]`: `"0x2"`})
	cases := []struct {
		n    int
		hash string
		want subscriptions.Verdict
	}{
		{2, "0xh2", subscriptions.Duplicate}, // the new upstream is behind: seen
		{3, "0xh3", subscriptions.Duplicate},
		{3, "0xr3", subscriptions.Forward}, // a reorg: a new hash at an old height
		{4, "0xh4", subscriptions.Forward},
		{4, "0xh4", subscriptions.Duplicate},
	}
	for _, tc := range cases {
		out, v := fromUpstream(t, c, head(`"0x2"`, tc.n, tc.hash))
		if v != tc.want {
			t.Fatalf("head %d %s: %v, want %v", tc.n, tc.hash, v, tc.want)
		}
		if v == subscriptions.Forward && out != head(`"0x1"`, tc.n, tc.hash) {
			t.Fatalf("head %d: %s", tc.n, out)
		}
	}
	// The window is bounded: the oldest hash is forgotten.
	for i := 5; i <= 8; i++ {
		fromUpstream(t, c, head(`"0x2"`, i, fmt.Sprintf("0xh%d", i)))
	}
	if _, v := fromUpstream(t, c, head(`"0x2"`, 4, "0xh4")); v != subscriptions.Forward {
		t.Fatalf("a hash older than the window: %v, want forward", v)
	}
}

func TestLostAnswersInFlightOnce(t *testing.T) {
	c := subscriptions.New(subscriptions.Config{})
	open(t, c, 1, `"s"`, `["newHeads"]`, `"0x1"`)
	c.FromClient(2, []byte(`{"jsonrpc":"2.0","id":7,"method":"eth_blockNumber"}`))
	c.FromClient(3, []byte(`[{"jsonrpc":"2.0","id":"a","method":"eth_chainId"},{"jsonrpc":"2.0","method":"note"},{"jsonrpc":"2.0","id":3,"method":"eth_call"},{"jsonrpc":"2.0","id":{"x":1},"method":"eth_call"}]`))
	c.FromClient(4, []byte(`{"jsonrpc":"2.0","id":8,"method":"eth_subscribe","params":["newPendingTransactions"]}`))
	c.FromClient(5, []byte(`{"jsonrpc":"2.0","id":9,"method":"eth_unsubscribe","params":["0x1"]}`))
	c.FromClient(6, []byte(`{"jsonrpc":"2.0","id":10,"method":"eth_gasPrice"}`)) // not written yet
	fromUpstream(t, c, `{"jsonrpc":"2.0","id":7,"result":"0x10"}`)               // answered before the loss
	if got := c.InFlight(); got != 5 {
		t.Fatalf("in flight: %d, want 5", got)
	}
	lost := move(t, c, 5, map[string]string{`["newHeads"]`: `"0x2"`})
	want := []string{
		`[{"jsonrpc":"2.0","id":"a","error":{"code":-32603,"message":"upstream connection lost, retry"}},{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"upstream connection lost, retry"}}]`,
		`{"jsonrpc":"2.0","id":8,"error":{"code":-32603,"message":"upstream connection lost, retry"}}`,
		`{"jsonrpc":"2.0","id":9,"error":{"code":-32603,"message":"upstream connection lost, retry"}}`,
	}
	if fmt.Sprint(lost) != fmt.Sprint(want) {
		t.Fatalf("Lost:\n%s\nwant\n%s", strings.Join(lost, "\n"), strings.Join(want, "\n"))
	}
	// The unsubscribe in flight was answered with an error: the
	// subscription stays (and was re-created); the subscribe in flight was
	// not opened. The request not yet written stays in flight.
	if c.Len() != 1 || c.InFlight() != 1 {
		t.Fatalf("after move: %d subscriptions, %d in flight; want 1, 1", c.Len(), c.InFlight())
	}
	if again := c.Lost(5); len(again) != 0 {
		t.Fatalf("answered twice: %q", again)
	}
	// The late answer of the old upstream is not the client's to get twice:
	// it is unknown now and passes (the transport never reads the old
	// connection again).
	if lost := c.Lost(6); len(lost) != 1 || !strings.Contains(string(lost[0]), `"id":10`) {
		t.Fatalf("second move: %q", lost)
	}
}

func TestLimits(t *testing.T) {
	c := subscriptions.New(subscriptions.Config{MaxSubscriptions: 2, MaxInFlight: 3})
	open(t, c, 1, "1", `["newHeads"]`, `"0x1"`)
	c.FromClient(2, []byte(`{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["logs"]}`)) // pending counts
	v, ans := c.FromClient(3, []byte(`{"jsonrpc":"2.0","id":3,"method":"eth_subscribe","params":["logs"]}`))
	if v != subscriptions.Refuse || string(ans) != `{"jsonrpc":"2.0","id":3,"error":{"code":-32005,"message":"too many subscriptions on this connection (limit 2)"}}` {
		t.Fatalf("third subscription: %v %s", v, ans)
	}
	v, ans = c.FromClient(4, []byte(`[{"jsonrpc":"2.0","id":4,"method":"eth_chainId"},{"jsonrpc":"2.0","id":5,"method":"eth_subscribe","params":["logs"]}]`))
	if v != subscriptions.Refuse || !strings.HasPrefix(string(ans), `[{"jsonrpc":"2.0","id":4,"error":{"code":-32005`) || !json.Valid(ans) {
		t.Fatalf("batch over the limit: %v %s", v, ans)
	}
	c.FromClient(5, []byte(`{"jsonrpc":"2.0","id":6,"method":"eth_chainId"}`))
	c.FromClient(6, []byte(`{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}`))
	if v, ans := c.FromClient(7, []byte(`{"jsonrpc":"2.0","id":8,"method":"eth_chainId"}`)); v != subscriptions.Refuse || !strings.Contains(string(ans), "in flight") {
		t.Fatalf("fourth in flight: %v %s", v, ans)
	}
	// Nor more than MaxBytes of ids and params.
	b := subscriptions.New(subscriptions.Config{MaxBytes: 100})
	if v, _ := b.FromClient(1, []byte(`{"jsonrpc":"2.0","id":"`+strings.Repeat("x", 60)+`","method":"eth_chainId"}`)); v != subscriptions.Forward {
		t.Fatalf("62-byte id: %v", v)
	}
	if v, ans := b.FromClient(2, []byte(`{"jsonrpc":"2.0","id":"`+strings.Repeat("y", 60)+`","method":"eth_chainId"}`)); v != subscriptions.Refuse || !strings.Contains(string(ans), "-32005") {
		t.Fatalf("second 62-byte id: %v %s", v, ans)
	}
	b.FromUpstream([]byte(`{"jsonrpc":"2.0","id":"` + strings.Repeat("x", 60) + `","result":1}`))
	if v, _ := b.FromClient(3, []byte(`{"jsonrpc":"2.0","id":"`+strings.Repeat("y", 60)+`","method":"eth_chainId"}`)); v != subscriptions.Forward {
		t.Fatalf("after the answer: %v", v)
	}
	// Notifications without an id are never refused.
	if v, _ := c.FromClient(8, []byte(`{"jsonrpc":"2.0","method":"eth_subscribe","params":["logs"]}`)); v != subscriptions.Forward {
		t.Fatalf("notification: %v", v)
	}
}

// After a move, an upstream may hand out for a new subscription an id the
// client holds for another one: the client gets a fresh one.
func TestCollidingUpstreamID(t *testing.T) {
	c := subscriptions.New(subscriptions.Config{})
	open(t, c, 1, "1", `["logs"]`, `"0x01"`)
	a := open(t, c, 2, "2", `["newHeads"]`, `"0x02"`)
	c.FromClient(3, []byte(`{"jsonrpc":"2.0","id":3,"method":"eth_unsubscribe","params":["0x01"]}`))
	fromUpstream(t, c, `{"jsonrpc":"2.0","id":3,"result":true}`)
	move(t, c, 3, map[string]string{`["newHeads"]`: `"0x01"`}) // the new node counts from 1 too
	b := open(t, c, 4, "4", `["logs"]`, `"0x02"`)              // the id the client holds for a
	if a != `"0x02"` || b == a || !strings.HasPrefix(b, `"0x`) || len(b) != 36 {
		t.Fatalf("colliding ids %s %s", a, b)
	}
	n := `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x02","result":{"hash":"0xh"}}}`
	if out, _ := fromUpstream(t, c, n); out != strings.Replace(n, `"0x02"`, b, 1) {
		t.Fatalf("notification of b: %s, want %s", out, b)
	}
	n = `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x01","result":{"hash":"0xh"}}}`
	if out, _ := fromUpstream(t, c, n); out != strings.Replace(n, `"0x01"`, a, 1) {
		t.Fatalf("notification of a: %s, want %s", out, a)
	}
}

func TestResubscribeRefused(t *testing.T) {
	c := subscriptions.New(subscriptions.Config{})
	open(t, c, 1, "1", `["newHeads"]`, `"0x01"`)
	c.Lost(1)
	reqs := c.Resubscribe()
	var r struct{ ID json.RawMessage }
	json.Unmarshal(reqs[0], &r)
	if _, v := fromUpstream(t, c, `{"jsonrpc":"2.0","id":`+string(r.ID)+`,"error":{"code":-32000,"message":"no"}}`); v != subscriptions.Absorb {
		t.Fatalf("refusal: %v", v)
	}
	if c.Err() != subscriptions.ErrResubscribeRefused {
		t.Fatalf("Err = %v", c.Err())
	}
}

// The normal path allocates nothing: a notification before and after a
// move, a request and its answer.
func TestNoAllocations(t *testing.T) {
	c := subscriptions.New(subscriptions.Config{})
	open(t, c, 1, "1", `["newHeads"]`, `"0x0000000000000000000000000000000a"`)
	before := []byte(head(`"0x0000000000000000000000000000000a"`, 1, "0xh"))
	req := []byte(`{"jsonrpc":"2.0","id":12,"method":"eth_blockNumber"}`)
	res := []byte(`{"jsonrpc":"2.0","id":12,"result":"0x1"}`)
	n := 0
	if a := testing.AllocsPerRun(100, func() {
		n++
		c.FromUpstream(before)
		c.FromClient(uint64(n), req)
		c.FromUpstream(res)
	}); a != 0 {
		t.Fatalf("%v allocations per notification and request, want 0", a)
	}
	move(t, c, 1, map[string]string{`["newHeads"]`: `"0x0000000000000000000000000000000b"`})
	after := []byte(head(`"0x0000000000000000000000000000000b"`, 1, "0xh"))
	buf := make([]byte, len(after))
	if a := testing.AllocsPerRun(100, func() {
		copy(buf, after)
		c.FromUpstream(buf)
	}); a != 0 {
		t.Fatalf("%v allocations per rewritten notification, want 0", a)
	}
}
