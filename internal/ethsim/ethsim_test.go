package ethsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestNodeAndClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := New(Config{ChainID: 5, HeadInterval: -1})
	go n.Run(ctx)
	srv := httptest.NewServer(n)
	defer srv.Close()
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Call(ctx, "eth_chainId")
	if err != nil || string(res) != `"0x5"` {
		t.Fatalf("eth_chainId = %s, %v; want \"0x5\"", res, err)
	}
	_, err = c.Call(ctx, "eth_nope")
	var rpcErr *RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32601 {
		t.Fatalf("unknown method: %v, want code -32601", err)
	}
	id, heads, err := c.Subscribe(ctx, "newHeads")
	if err != nil {
		t.Fatal(err)
	}
	before := n.Head()
	n.Tick()
	select {
	case h := <-heads:
		var head struct{ Number string }
		if err := json.Unmarshal(h, &head); err != nil || head.Number == "" {
			t.Fatalf("head %s: %v", h, err)
		}
		if want := "0x" + strconv.FormatUint(before+1, 16); head.Number != want {
			t.Fatalf("head number %s, want %s", head.Number, want)
		}
	case <-ctx.Done():
		t.Fatal("no head")
	}
	res, err = c.Call(ctx, "eth_unsubscribe", id)
	if err != nil || string(res) != "true" {
		t.Fatalf("eth_unsubscribe = %s, %v", res, err)
	}
	if n.Subscriptions() != 0 {
		t.Fatalf("%d subscriptions left", n.Subscriptions())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBatchLimit(t *testing.T) {
	n := New(Config{MaxBatch: 2})
	var batch []string
	for range 3 {
		batch = append(batch, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`)
	}
	out := n.handle(&conn{mine: map[string]bool{}}, websocket.MessageText, []byte("["+strings.Join(batch, ",")+"]")).out
	if !strings.Contains(string(out), "-32600") || strings.HasPrefix(string(out), "[") {
		t.Fatalf("oversized batch answered %s, want one -32600 error object", out)
	}
	out = n.handle(&conn{mine: map[string]bool{}}, websocket.MessageText, []byte("["+strings.Join(batch[:2], ",")+"]")).out
	var rs []map[string]any
	if err := json.Unmarshal(out, &rs); err != nil || len(rs) != 2 {
		t.Fatalf("batch of 2 answered %s", out)
	}
}

// TestConcurrentCalls pipelines calls from many goroutines on one client:
// every call gets its own answer (a request sent under another call's id
// would leave one call unanswered until its deadline).
func TestConcurrentCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := New(Config{HeadInterval: -1})
	srv := httptest.NewServer(n)
	defer srv.Close()
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errs := make(chan error, 64)
	for range 64 {
		go func() {
			var err error
			for range 50 {
				if _, err = c.Call(ctx, "eth_blockNumber"); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range 64 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestEthCall answers eth_call with one 32-byte word, as the closed-loop
// load generator expects.
func TestEthCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := httptest.NewServer(New(Config{HeadInterval: -1}))
	defer srv.Close()
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Call(ctx, "eth_call", map[string]string{"to": "0x00000000000000000000000000000000000000aa", "data": "0x70a08231"}, "latest")
	var word string
	if err != nil || json.Unmarshal(res, &word) != nil || len(word) != 66 || !strings.HasPrefix(word, "0x") {
		t.Fatalf("eth_call = %s, %v; want a 0x-prefixed 32-byte word", res, err)
	}
}

// TestStream subscribes to a StreamKind stream over a raw WebSocket: the
// subscribe response comes first, then exactly count notifications
// numbered 1..count, in order, spread over (count-1)/rate seconds, each
// stamped with its scheduled time.
func TestStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := New(Config{HeadInterval: -1})
	srv := httptest.NewServer(n)
	defer srv.Close()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	const rate, count = 500, 50
	before := time.Now()
	req := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"eth_subscribe","params":[%q,{"rate":%d,"count":%d}]}`, StreamKind, rate, count)
	if err := ws.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		t.Fatal(err)
	}
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sub struct {
		ID     int    `json:"id"`
		Result string `json:"result"`
	}
	if err := json.Unmarshal(b, &sub); err != nil || sub.ID != 7 || sub.Result == "" {
		t.Fatalf("first frame %s, want the subscribe response", b)
	}
	var first, last StreamItem
	for i := int64(1); i <= count; i++ {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var note struct {
			Method string `json:"method"`
			Params struct {
				Subscription string     `json:"subscription"`
				Result       StreamItem `json:"result"`
			} `json:"params"`
		}
		if err := json.Unmarshal(b, &note); err != nil || note.Method != "eth_subscription" || note.Params.Subscription != sub.Result {
			t.Fatalf("notification %d: %s (%v)", i, b, err)
		}
		it := note.Params.Result
		if it.Seq != i {
			t.Fatalf("notification %d has seq %d", i, it.Seq)
		}
		if it.Due < before.UnixNano() || it.Due > time.Now().UnixNano() {
			t.Fatalf("notification %d due %d, outside [%d, now]", i, it.Due, before.UnixNano())
		}
		if i == 1 {
			first = it
		}
		last = it
	}
	if want := time.Duration(count-1) * time.Second / rate; time.Duration(last.Due-first.Due) != want {
		t.Fatalf("stream spans %s, want %s at %d/s", time.Duration(last.Due-first.Due), want, rate)
	}
	// Nothing beyond count: the next frame is the unsubscribe response.
	unsub := fmt.Sprintf(`{"jsonrpc":"2.0","id":8,"method":"eth_unsubscribe","params":[%q]}`, sub.Result)
	if err := ws.Write(ctx, websocket.MessageText, []byte(unsub)); err != nil {
		t.Fatal(err)
	}
	if _, b, err = ws.Read(ctx); err != nil || !strings.Contains(string(b), `"id":8`) || !strings.Contains(string(b), "true") {
		t.Fatalf("after %d notifications: %s (%v), want the unsubscribe response", count, b, err)
	}
	if s := n.Subscriptions(); s != 0 {
		t.Fatalf("%d subscriptions left after unsubscribe", s)
	}
}

// TestStreamParams rejects a stream without a positive rate and count.
func TestStreamParams(t *testing.T) {
	n := New(Config{HeadInterval: -1})
	for _, p := range []string{``, `,{"rate":0,"count":5}`, `,{"rate":10,"count":0}`, `,{"rate":1e7,"count":1}`, `,"x"`} {
		out := n.handle(&conn{mine: map[string]bool{}}, websocket.MessageText,
			[]byte(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["`+StreamKind+`"`+p+`]}`)).out
		if !strings.Contains(string(out), "-32602") {
			t.Errorf("params %q answered %s, want -32602", p, out)
		}
	}
	c := &conn{mine: map[string]bool{}}
	out := n.handle(c, websocket.MessageText,
		[]byte(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["`+StreamKind+`",{"rate":10,"count":3}]}`)).out
	if strings.Contains(string(out), "error") || len(c.after) != 1 || n.Subscriptions() != 1 {
		t.Fatalf("valid stream answered %s with %d pending starts, %d subscriptions", out, len(c.after), n.Subscriptions())
	}
}

// TestClientSubscribeFirstNotification subscribes with the Client to a
// stream whose first notifications follow the subscribe response at once:
// none is lost while Subscribe learns the subscription id.
func TestClientSubscribeFirstNotification(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := httptest.NewServer(New(Config{HeadInterval: -1}))
	defer srv.Close()
	for range 20 {
		c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"))
		if err != nil {
			t.Fatal(err)
		}
		_, notes, err := c.Subscribe(ctx, StreamKind, StreamParams{Rate: 1e6, Count: 20})
		if err != nil {
			t.Fatal(err)
		}
		for want := int64(1); want <= 20; want++ {
			var it StreamItem
			select {
			case raw := <-notes:
				if err := json.Unmarshal(raw, &it); err != nil || it.Seq != want {
					t.Fatalf("notification %s (%v), want seq %d", raw, err, want)
				}
			case <-ctx.Done():
				t.Fatalf("notification %d never came", want)
			}
		}
		c.Close()
	}
}

// dialRaw connects a plain WebSocket client to a node serving cfg.
func dialRaw(t *testing.T, cfg Config) (*Node, *websocket.Conn) {
	t.Helper()
	n := New(cfg)
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(32 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return n, c
}

func roundTrip(t *testing.T, c *websocket.Conn, typ websocket.MessageType, req string) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, []byte(req)); err != nil {
		t.Fatal(err)
	}
	rt, p, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rt, p
}

// TestBytes: ethsim_bytes answers with a result of exactly the size asked
// for, and refuses sizes over MaxBytes.
func TestBytes(t *testing.T) {
	_, c := dialRaw(t, Config{HeadInterval: -1, TestMethods: true, MaxBytes: 3 << 20})
	for _, size := range []int{0, 1, 1023, 1024, 1025, 3 << 20} {
		_, p := roundTrip(t, c, websocket.MessageText, fmt.Sprintf(`{"jsonrpc":"2.0","id":"b","method":"ethsim_bytes","params":[%d]}`, size))
		var r struct {
			ID     string
			Result string
		}
		if err := json.Unmarshal(p, &r); err != nil || r.ID != "b" || len(r.Result) != size {
			t.Fatalf("ethsim_bytes %d: %d-byte result, id %q, %v", size, len(r.Result), r.ID, err)
		}
		if want := size + len(`{"jsonrpc":"2.0","id":"b","result":""}`); len(p) != want {
			t.Fatalf("ethsim_bytes %d: message of %d bytes, want %d", size, len(p), want)
		}
	}
	_, p := roundTrip(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"ethsim_bytes","params":[3145729]}`)
	if !strings.Contains(string(p), "-32602") {
		t.Fatalf("over MaxBytes answered %.100s, want -32602", p)
	}
	_, p = roundTrip(t, c, websocket.MessageText, `[{"jsonrpc":"2.0","id":1,"method":"ethsim_bytes","params":[5]}]`)
	if string(p) != `[{"jsonrpc":"2.0","id":1,"result":"01234"}]` {
		t.Fatalf("ethsim_bytes in a batch: %s", p)
	}
}

// TestTestMethodsOff: without TestMethods the test methods do not exist.
func TestTestMethodsOff(t *testing.T) {
	_, c := dialRaw(t, Config{HeadInterval: -1})
	for _, m := range []string{"ethsim_bytes", "ethsim_close"} {
		_, p := roundTrip(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"`+m+`","params":[1000]}`)
		if !strings.Contains(string(p), "-32601") {
			t.Fatalf("%s answered %s, want -32601", m, p)
		}
	}
}

// TestCloseAndOnClose: ethsim_close closes, unanswered, with the code and
// reason asked for, and OnClose reports it; a client's close code is reported too.
func TestCloseAndOnClose(t *testing.T) {
	closes := make(chan websocket.StatusCode, 2)
	n := New(Config{HeadInterval: -1, TestMethods: true, OnClose: func(code websocket.StatusCode) { closes <- code }})
	srv := httptest.NewServer(n)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"ethsim_close","params":[4001,"bye"]}`)); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye" {
		t.Fatalf("read after ethsim_close: %v, want close 4001 bye", err)
	}
	if code := <-closes; code != 4001 {
		t.Fatalf("OnClose(%d), want 4001", code)
	}

	c, _, err = websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(4002, "client bye"); err != nil {
		t.Fatal(err)
	}
	if code := <-closes; code != 4002 {
		t.Fatalf("OnClose(%d), want 4002", code)
	}
}

// TestEcho: with Echo, binary messages and text that is not JSON-RPC come
// back as they were; without it, text that is not JSON is a parse error.
func TestEcho(t *testing.T) {
	_, c := dialRaw(t, Config{HeadInterval: -1, Echo: true})
	for _, m := range []struct {
		typ websocket.MessageType
		p   string
	}{{websocket.MessageBinary, "\x00\x01\x02"}, {websocket.MessageText, "hello"}, {websocket.MessageText, ""}, {websocket.MessageBinary, `{"id":1}`}} {
		if typ, p := roundTrip(t, c, m.typ, m.p); typ != m.typ || string(p) != m.p {
			t.Fatalf("echo of %v %q: %v %q", m.typ, m.p, typ, p)
		}
	}
	if _, p := roundTrip(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`); string(p) != `{"jsonrpc":"2.0","id":1,"result":"0x1"}` {
		t.Fatalf("with Echo, a call answered %s", p)
	}
	_, c = dialRaw(t, Config{HeadInterval: -1})
	if _, p := roundTrip(t, c, websocket.MessageText, "hello"); !strings.Contains(string(p), "-32700") {
		t.Fatalf("without Echo, text answered %s, want -32700", p)
	}
}

// TestSubscribeResponseFirst: heads made while eth_subscribe is answered
// never reach the client before the response that names the subscription.
func TestSubscribeResponseFirst(t *testing.T) {
	n, c := dialRaw(t, Config{HeadInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stop := make(chan struct{})
	heads := make(chan struct{})
	go func() {
		defer close(heads)
		for {
			select {
			case <-stop:
				return
			default:
				n.NewHead(ctx)
			}
		}
	}()
	defer func() { close(stop); <-heads }()
	known := map[string]bool{}
	// next reads until the response to id, checking each notification
	// on the way names a subscription already answered.
	next := func(id int) string {
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				ID     *int
				Result any
				Params struct{ Subscription string }
			}
			if err := json.Unmarshal(p, &m); err != nil {
				t.Fatal(err)
			}
			if m.ID == nil {
				if !known[m.Params.Subscription] {
					t.Fatalf("notification for %q before its eth_subscribe response", m.Params.Subscription)
				}
				continue
			}
			if *m.ID != id {
				t.Fatalf("response to %d, want %d", *m.ID, id)
			}
			s, _ := m.Result.(string)
			return s
		}
	}
	for i := 0; i < 400; i += 2 {
		if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"eth_subscribe","params":["newHeads"]}`, i)); err != nil {
			t.Fatal(err)
		}
		id := next(i)
		known[id] = true
		if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"eth_unsubscribe","params":[%q]}`, i+1, id)); err != nil {
			t.Fatal(err)
		}
		next(i + 1)
	}
}

// Nodes of one Chain send the same heads, number and hash; a frozen one
// falls behind, in eth_blockNumber too, and sends nothing until thawed.
func TestSharedChain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	chain := NewChain()
	var heads []<-chan json.RawMessage
	var clients []*Client
	var nodes []*Node
	for range 2 {
		n := New(Config{HeadInterval: -1, Chain: chain, FullHeaders: true})
		go n.Run(ctx)
		srv := httptest.NewServer(n)
		defer srv.Close()
		c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, h, err := c.Subscribe(ctx, "newHeads")
		if err != nil {
			t.Fatal(err)
		}
		heads, clients, nodes = append(heads, h), append(clients, c), append(nodes, n)
	}
	next := func(i int) (string, string) {
		t.Helper()
		select {
		case h := <-heads[i]:
			var head struct{ Number, Hash, StateRoot string }
			if err := json.Unmarshal(h, &head); err != nil || head.StateRoot == "" {
				t.Fatalf("head %s: %v (want full headers)", h, err)
			}
			return head.Number, head.Hash
		case <-ctx.Done():
			t.Fatal("no head")
			return "", ""
		}
	}
	nodes[1].Tick() // any node's tick advances the chain
	n0, h0 := next(0)
	n1, h1 := next(1)
	if n0 != n1 || h0 != h1 || n0 != "0x1000001" {
		t.Fatalf("heads %s %s and %s %s: want the same, 0x1000001", n0, h0, n1, h1)
	}
	nodes[1].Freeze()
	chain.Next(ctx)
	chain.Next(ctx)
	next(0)
	if n, _ := next(0); n != "0x1000003" {
		t.Fatalf("head %s, want 0x1000003", n)
	}
	select {
	case h := <-heads[1]:
		t.Fatalf("a frozen node sent %s", h)
	case <-time.After(50 * time.Millisecond):
	}
	for i, want := range []string{`"0x1000003"`, `"0x1000001"`} {
		if res, err := clients[i].Call(ctx, "eth_blockNumber"); err != nil || string(res) != want {
			t.Fatalf("node %d eth_blockNumber = %s, %v; want %s", i, res, err, want)
		}
	}
	nodes[1].Thaw(ctx)
	for _, want := range []string{"0x1000002", "0x1000003"} {
		if n, _ := next(1); n != want {
			t.Fatalf("thawed node sent %s, want %s", n, want)
		}
	}
	chain.Next(ctx)
	n0, h0 = next(0)
	n1, h1 = next(1)
	if n0 != n1 || h0 != h1 || n1 != "0x1000004" {
		t.Fatalf("after thaw: %s %s and %s %s", n0, h0, n1, h1)
	}
}
