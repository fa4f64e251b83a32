package ethsim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
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
	out := n.handle(&conn{mine: map[string]bool{}}, []byte("["+strings.Join(batch, ",")+"]"))
	if !strings.Contains(string(out), "-32600") || strings.HasPrefix(string(out), "[") {
		t.Fatalf("oversized batch answered %s, want one -32600 error object", out)
	}
	out = n.handle(&conn{mine: map[string]bool{}}, []byte("["+strings.Join(batch[:2], ",")+"]"))
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
