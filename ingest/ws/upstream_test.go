package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// upstream is a small in-process JSON-RPC WebSocket server: eth_chainId,
// eth_blockNumber, eth_subscribe newHeads (answered, then two eth_subscription
// notifications), eth_unsubscribe, batches; it echoes what is not JSON, and
// has test methods to close with a code or send an oversized message. It
// reports the close code each connection ended with on closes.
type upstream struct {
	srv    *httptest.Server
	subs   atomic.Int64
	closes chan websocket.StatusCode
}

type rpcMsg struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id,omitempty"`
	Method  string            `json:"method,omitempty"`
	Params  []json.RawMessage `json:"params,omitempty"`
	Result  any               `json:"result,omitempty"`
	Error   any               `json:"error,omitempty"`
}

func startUpstream(t testing.TB) *upstream {
	u := &upstream{closes: make(chan websocket.StatusCode, 100)}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

// closed returns the code the next upstream connection to end ended with;
// it fails t rather than hang if none ends.
func (u *upstream) closed(t *testing.T) websocket.StatusCode {
	t.Helper()
	select {
	case code := <-u.closes:
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("no upstream connection ended")
		return 0
	}
}

func (u *upstream) url() string { return "ws" + strings.TrimPrefix(u.srv.URL, "http") }

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(4 << 20)
	ctx := context.Background()
	defer func() { _ = c.CloseNow() }()
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			u.closes <- websocket.CloseStatus(err)
			return
		}
		if typ == websocket.MessageBinary || len(p) == 0 || (p[0] != '{' && p[0] != '[') {
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
			continue
		}
		if p[0] == '[' {
			var reqs []rpcMsg
			_ = json.Unmarshal(p, &reqs)
			resps := make([]rpcMsg, len(reqs))
			for i, q := range reqs {
				resps[i] = u.answer(q)
			}
			b, _ := json.Marshal(resps)
			if err := c.Write(ctx, websocket.MessageText, b); err != nil {
				return
			}
			continue
		}
		var q rpcMsg
		_ = json.Unmarshal(p, &q)
		switch q.Method {
		case "test_close":
			_ = c.Close(4001, "bye")
			u.closes <- 4001
			return
		case "test_big":
			big := `{"jsonrpc":"2.0","id":` + string(q.ID) + `,"result":"` + strings.Repeat("a", 1<<20) + `"}`
			if err := c.Write(ctx, websocket.MessageText, []byte(big)); err != nil {
				return
			}
			continue
		}
		resp := u.answer(q)
		b, _ := json.Marshal(resp)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			return
		}
		if q.Method == "eth_subscribe" {
			for i := range 2 {
				n := fmt.Sprintf(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":%q,"result":{"number":"0x%x"}}}`, resp.Result, i+1)
				if err := c.Write(ctx, websocket.MessageText, []byte(n)); err != nil {
					return
				}
			}
		}
	}
}

func (u *upstream) answer(q rpcMsg) rpcMsg {
	r := rpcMsg{JSONRPC: "2.0", ID: q.ID}
	switch q.Method {
	case "eth_chainId":
		r.Result = "0x1"
	case "eth_blockNumber", "net_version":
		r.Result = "0x10"
	case "eth_subscribe":
		r.Result = fmt.Sprintf("0xsub%d", u.subs.Add(1))
	case "eth_unsubscribe":
		r.Result = true
	default:
		r.Error = map[string]any{"code": -32601, "message": "the method " + q.Method + " does not exist"}
	}
	return r
}
