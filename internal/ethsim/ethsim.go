// Package ethsim is a small Ethereum JSON-RPC WebSocket node for the demo,
// the load generator and tests: eth_chainId, eth_blockNumber, net_version,
// eth_call, eth_subscribe / eth_unsubscribe with newHeads notifications and
// a rate-driven test stream (StreamKind), and JSON-RPC batches. It keeps no
// chain; heads and call results are synthesised.
package ethsim

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Config shapes a Node.
type Config struct {
	// ChainID answered by eth_chainId (default 1).
	ChainID uint64
	// HeadInterval is how often a new head is made and pushed to newHeads
	// subscribers (default 1s; negative: only on Tick).
	HeadInterval time.Duration
	// MaxBatch is the largest batch served (default 10); a larger one is
	// answered with a single -32600 error.
	MaxBatch int
	// Logger receives connection errors (nil: discarded).
	Logger *slog.Logger
}

// Node serves JSON-RPC over WebSocket at any path.
type Node struct {
	cfg    Config
	head   atomic.Uint64
	nextID atomic.Uint64

	mu      sync.Mutex
	subs    map[string]*conn // newHeads subscription id → connection
	streams int              // live StreamKind subscriptions
	tick    chan struct{}
}

// New returns a Node; Run makes heads.
func New(cfg Config) *Node {
	if cfg.ChainID == 0 {
		cfg.ChainID = 1
	}
	if cfg.HeadInterval == 0 {
		cfg.HeadInterval = time.Second
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, subs: map[string]*conn{}, tick: make(chan struct{}, 1)}
	n.head.Store(0x1000000)
	return n
}

// Run makes a head every HeadInterval (and on each Tick) until ctx ends.
func (n *Node) Run(ctx context.Context) {
	var c <-chan time.Time
	if n.cfg.HeadInterval > 0 {
		t := time.NewTicker(n.cfg.HeadInterval)
		defer t.Stop()
		c = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c:
		case <-n.tick:
		}
		n.newHead(ctx)
	}
}

// Tick makes one head now (Run must be running).
func (n *Node) Tick() {
	select {
	case n.tick <- struct{}{}:
	default:
	}
}

// Head returns the current block number.
func (n *Node) Head() uint64 { return n.head.Load() }

// Subscriptions returns the number of live subscriptions, newHeads and
// StreamKind (a complete stream stays live until unsubscribed).
func (n *Node) Subscriptions() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.subs) + int(n.streams)
}

func (n *Node) newHead(ctx context.Context) {
	h := n.head.Add(1)
	n.mu.Lock()
	targets := make(map[string]*conn, len(n.subs))
	for id, c := range n.subs {
		targets[id] = c
	}
	n.mu.Unlock()
	for id, c := range targets {
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":%q,"result":{"number":"0x%x","hash":"0x%064x","parentHash":"0x%064x","timestamp":"0x%x","gasLimit":"0x1c9c380","gasUsed":"0x0","miner":"0x0000000000000000000000000000000000000000"}}}`,
			id, h, h, h-1, time.Now().Unix())
		c.send(ctx, []byte(msg))
	}
}

// ServeHTTP accepts a WebSocket connection and serves JSON-RPC on it.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	ctx, cancel := context.WithCancel(r.Context())
	c := &conn{ws: ws, mine: map[string]bool{}, streams: map[string]context.CancelFunc{}, ctx: ctx}
	defer cancel()
	defer n.drop(c)
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		if out := n.handle(c, data); out != nil {
			if err := c.send(ctx, out); err != nil {
				n.cfg.Logger.Debug("ethsim: write", "err", err)
				return
			}
		}
		for _, f := range c.after {
			f()
		}
		c.after = c.after[:0]
	}
}

func (n *Node) drop(c *conn) {
	n.mu.Lock()
	for id := range c.mine {
		delete(n.subs, id)
	}
	for id, stop := range c.streams {
		stop()
		delete(c.streams, id)
		n.streams--
	}
	n.mu.Unlock()
	c.ws.CloseNow()
}

type conn struct {
	ws      *websocket.Conn
	wmu     sync.Mutex
	mine    map[string]bool               // guarded by Node.mu
	streams map[string]context.CancelFunc // StreamKind subscriptions; guarded by Node.mu
	ctx     context.Context               // ends with the connection
	// after holds what starts once the frame being answered has been
	// written: a stream's first notification never precedes the subscribe
	// response that names it. Only the connection's read loop touches it.
	after []func()
}

func (c *conn) send(ctx context.Context, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

type request struct {
	Version string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

type response struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// handle answers one frame: a call, a notification (no answer) or a batch.
func (n *Node) handle(c *conn, data []byte) []byte {
	for _, b := range data {
		if b == ' ' || b == '\t' || b == '\r' || b == '\n' {
			continue
		}
		if b == '[' {
			var batch []json.RawMessage
			if err := json.Unmarshal(data, &batch); err != nil {
				return mustJSON(response{Version: "2.0", ID: json.RawMessage("null"), Error: &rpcError{-32700, "parse error"}})
			}
			if len(batch) == 0 {
				return mustJSON(response{Version: "2.0", ID: json.RawMessage("null"), Error: &rpcError{-32600, "empty batch"}})
			}
			if len(batch) > n.cfg.MaxBatch {
				return mustJSON(response{Version: "2.0", ID: json.RawMessage("null"), Error: &rpcError{-32600, "batch too large"}})
			}
			var out []response
			for _, item := range batch {
				if r, ok := n.call(c, item); ok {
					out = append(out, r)
				}
			}
			if len(out) == 0 {
				return nil
			}
			return mustJSON(out)
		}
		break
	}
	r, ok := n.call(c, data)
	if !ok {
		return nil
	}
	return mustJSON(r)
}

func (n *Node) call(c *conn, data []byte) (response, bool) {
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		return response{Version: "2.0", ID: json.RawMessage("null"), Error: &rpcError{-32700, "parse error"}}, true
	}
	if len(req.ID) == 0 {
		return response{}, false // a notification: no answer
	}
	res := response{Version: "2.0", ID: req.ID}
	switch req.Method {
	case "eth_chainId":
		res.Result = "0x" + strconv.FormatUint(n.cfg.ChainID, 16)
	case "net_version":
		res.Result = strconv.FormatUint(n.cfg.ChainID, 10)
	case "eth_blockNumber":
		res.Result = "0x" + strconv.FormatUint(n.head.Load(), 16)
	case "eth_call":
		// One 32-byte word, as a balanceOf or a getter answers; the
		// params are not read.
		res.Result = fmt.Sprintf("0x%064x", n.head.Load())
	case "eth_subscribe":
		var kind string
		if len(req.Params) > 0 {
			_ = json.Unmarshal(req.Params[0], &kind)
		}
		var sp StreamParams
		switch kind {
		case "newHeads":
		case StreamKind:
			if len(req.Params) < 2 || json.Unmarshal(req.Params[1], &sp) != nil || sp.validate() != nil {
				msg := "invalid " + StreamKind + " params: want {\"rate\": R, \"count\": N}, R in (0, 1e6], N > 0"
				res.Error = &rpcError{-32602, msg}
				return res, true
			}
		default:
			res.Error = &rpcError{-32602, "unsupported subscription: " + kind}
			return res, true
		}
		id := fmt.Sprintf("0x%032x", n.nextID.Add(1))
		n.mu.Lock()
		if kind == "newHeads" {
			n.subs[id] = c
		} else {
			ctx, stop := context.WithCancel(c.connCtx())
			if c.streams == nil {
				c.streams = map[string]context.CancelFunc{}
			}
			c.streams[id] = stop
			n.streams++
			c.after = append(c.after, func() { go n.stream(ctx, c, id, sp) })
		}
		c.mine[id] = true
		n.mu.Unlock()
		res.Result = id
	case "eth_unsubscribe":
		var id string
		if len(req.Params) > 0 {
			_ = json.Unmarshal(req.Params[0], &id)
		}
		n.mu.Lock()
		ok := c.mine[id]
		delete(c.mine, id)
		delete(n.subs, id)
		if stop := c.streams[id]; stop != nil {
			stop()
			delete(c.streams, id)
			n.streams--
		}
		n.mu.Unlock()
		res.Result = ok
	default:
		res.Error = &rpcError{-32601, "the method " + req.Method + " does not exist/is not available"}
	}
	return res, true
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`)
	}
	return b
}
