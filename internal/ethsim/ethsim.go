// Package ethsim is a small Ethereum JSON-RPC WebSocket node for the demo,
// the load generator and tests: eth_chainId, eth_blockNumber, net_version,
// eth_call, eth_subscribe / eth_unsubscribe with newHeads notifications and
// a rate-driven test stream (StreamKind), and JSON-RPC batches. It keeps no
// chain; heads and call results are synthesised, a head's hash from its
// number, and several nodes can share one Chain so that they agree on
// every head, as the nodes behind one endpoint do.
//
// For tests of proxies it can also misbehave on request (Config.TestMethods):
// answer with a message of any size, or close with a chosen code; echo what
// is not JSON-RPC (Config.Echo); and report how each connection ended
// (Config.OnClose).
package ethsim

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
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

	// TestMethods enables three methods for tests: ethsim_bytes [n]
	// answers with a result string of n bytes (at most MaxBytes), so the
	// response message is n bytes plus its envelope; ethsim_close [code,
	// reason] closes the connection with that close code and reason;
	// ethsim_hang is never answered.
	TestMethods bool
	// MaxBytes bounds ethsim_bytes (default 16 MiB).
	MaxBytes int
	// Echo answers a binary message, and a text message that is not a JSON
	// object or array, with the message itself (default: binary messages
	// are ignored and such text is a parse error).
	Echo bool
	// ReadLimit is the largest message read (default 1 MiB); a larger one
	// closes the connection with 1009.
	ReadLimit int64
	// WriteTimeout bounds each write (default 5s); a connection whose peer
	// does not take a message in time is dropped, as nodes do.
	WriteTimeout time.Duration
	// OnClose, when set, is called once as each connection ends, with the
	// close code the peer sent, the code the node closed with
	// (ethsim_close), or -1 when the connection ended without a close frame.
	OnClose func(code websocket.StatusCode)
	// Chain, when set, is where the node's heads come from: every head the
	// chain makes (Chain.Next, or Tick and Run on any of its nodes) is
	// sent to the newHeads subscribers of every node of the chain, the
	// same number and hash on each.
	Chain *Chain
	// SubscriptionIDBase is added to the node's subscription ids (0x and
	// 32 hex digits, counting from 1): nodes with different bases hand out
	// different ids, as real nodes do.
	SubscriptionIDBase uint64
	// FullHeaders makes newHeads carry every field go-ethereum's
	// types.Header requires, so that its ethclient decodes them.
	FullHeaders bool
}

// Chain is a head source several Nodes share (Config.Chain).
type Chain struct {
	mu    sync.Mutex
	head  uint64
	nodes []*Node
}

// NewChain returns a chain whose next head is 0x1000001, where a Node of
// its own starts too.
func NewChain() *Chain { return &Chain{head: 0x1000000} }

// Head is the chain's current block number.
func (c *Chain) Head() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.head
}

// Next makes the next head and returns its number once it has been sent
// to the newHeads subscribers of every node of the chain that is not
// frozen.
func (c *Chain) Next(ctx context.Context) uint64 {
	c.mu.Lock()
	c.head++
	h, nodes := c.head, slices.Clone(c.nodes)
	c.mu.Unlock()
	for _, n := range nodes {
		if !n.frozen.Load() {
			n.head.Store(h)
			n.publish(ctx, h)
		}
	}
	return h
}

// Node serves JSON-RPC over WebSocket at any path.
type Node struct {
	cfg     Config
	head    atomic.Uint64
	frozen  atomic.Bool
	nextID  atomic.Uint64
	calls   atomic.Uint64
	hanging atomic.Int64

	mu      sync.Mutex
	subs    map[string]*conn // newHeads subscription id → connection
	conns   map[*conn]struct{}
	killed  atomic.Bool
	streams int // live StreamKind subscriptions
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
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 16 << 20
	}
	if cfg.ReadLimit == 0 {
		cfg.ReadLimit = 1 << 20
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	n := &Node{cfg: cfg, subs: map[string]*conn{}, tick: make(chan struct{}, 1)}
	n.head.Store(0x1000000)
	if c := cfg.Chain; c != nil {
		c.mu.Lock()
		c.nodes = append(c.nodes, n)
		n.head.Store(c.head)
		c.mu.Unlock()
	}
	return n
}

// Freeze makes a node of a Chain stop following it: its head stays where
// it is and its subscribers get no new heads, as a node that fell out of
// sync.
func (n *Node) Freeze() { n.frozen.Store(true) }

// Thaw catches a frozen node up with its chain, as a node importing the
// blocks it missed: it sends each missed head, in order, before it
// follows the chain again.
func (n *Node) Thaw(ctx context.Context) {
	c := n.cfg.Chain
	if c == nil {
		n.frozen.Store(false)
		return
	}
	for {
		h, target := n.head.Load(), c.Head()
		if h >= target {
			break
		}
		n.head.Store(h + 1)
		n.publish(ctx, h+1)
	}
	n.frozen.Store(false)
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

// Calls returns the JSON-RPC calls (and notifications) the node has
// received, batch elements one by one.
func (n *Node) Calls() uint64 { return n.calls.Load() }

// Hanging returns the number of ethsim_hang calls received.
func (n *Node) Hanging() int64 { return n.hanging.Load() }

// Head returns the current block number.
func (n *Node) Head() uint64 { return n.head.Load() }

// Subscriptions returns the number of live subscriptions, newHeads and
// StreamKind (a complete stream stays live until unsubscribed).
func (n *Node) Subscriptions() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.subs) + int(n.streams)
}

// NewHead makes a head now and returns its number once it has been sent to
// every newHeads subscriber.
func (n *Node) NewHead(ctx context.Context) uint64 { return n.newHead(ctx) }

func (n *Node) newHead(ctx context.Context) uint64 {
	if n.cfg.Chain != nil {
		return n.cfg.Chain.Next(ctx)
	}
	h := n.head.Add(1)
	n.publish(ctx, h)
	return h
}

// publish sends head h to every newHeads subscriber.
func (n *Node) publish(ctx context.Context, h uint64) {
	n.mu.Lock()
	targets := make(map[string]*conn, len(n.subs))
	for id, c := range n.subs {
		targets[id] = c
	}
	n.mu.Unlock()
	for id, c := range targets {
		var msg string
		if n.cfg.FullHeaders {
			// Timestamp from the number: nodes of a chain agree on it.
			msg = fmt.Sprintf(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":%q,"result":{"number":"0x%x","hash":"0x%064x","parentHash":"0x%064x","timestamp":"0x%x","gasLimit":"0x1c9c380","gasUsed":"0x0","miner":"0x0000000000000000000000000000000000000000",`+
				`"sha3Uncles":"0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347","stateRoot":"0x%064x","transactionsRoot":"0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421","receiptsRoot":"0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421","logsBloom":"0x%0512x","difficulty":"0x0","extraData":"0x","mixHash":"0x%064x","nonce":"0x0000000000000000","baseFeePerGas":"0x3b9aca00"}}}`,
				id, h, h, h-1, 1700000000+h*12, h, 0, 0)
		} else {
			msg = fmt.Sprintf(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":%q,"result":{"number":"0x%x","hash":"0x%064x","parentHash":"0x%064x","timestamp":"0x%x","gasLimit":"0x1c9c380","gasUsed":"0x0","miner":"0x0000000000000000000000000000000000000000"}}}`,
				id, h, h, h-1, time.Now().Unix())
		}
		c.send(ctx, []byte(msg))
	}
}

// ServeHTTP accepts a WebSocket connection and serves JSON-RPC on it.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n.killed.Load() {
		http.Error(w, "ethsim: killed", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ws.SetReadLimit(n.cfg.ReadLimit)
	ctx, cancel := context.WithCancel(r.Context())
	c := &conn{ws: ws, mine: map[string]bool{}, streams: map[string]context.CancelFunc{}, ctx: ctx,
		timeout: n.cfg.WriteTimeout}
	n.mu.Lock()
	if n.conns == nil {
		n.conns = map[*conn]struct{}{}
	}
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	code := websocket.StatusCode(-1)
	defer cancel()
	defer func() {
		n.drop(c)
		if n.cfg.OnClose != nil {
			n.cfg.OnClose(code)
		}
	}()
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			code = websocket.CloseStatus(err)
			return
		}
		// The write lock is held from handling the message until its
		// answer is written, so a head made meanwhile waits: no
		// notification overtakes (or misses) the response that carries
		// its subscription id.
		c.wmu.Lock()
		a := n.handle(c, typ, data)
		if a.out != nil {
			err = c.writeLocked(ctx, a.typ, a.out)
		}
		c.wmu.Unlock()
		if err != nil {
			n.cfg.Logger.Debug("ethsim: write", "err", err)
			return
		}
		if a.closeCode != 0 {
			code = a.closeCode
			_ = ws.Close(a.closeCode, a.closeText)
			return
		}
		for _, f := range c.after {
			f()
		}
		c.after = c.after[:0]
	}
}

// Kill drops every connection at once, without a close frame, and refuses
// new ones (HTTP 503), as a node that was killed.
func (n *Node) Kill() {
	n.killed.Store(true)
	n.mu.Lock()
	conns := make([]*conn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	for _, c := range conns {
		c.ws.CloseNow()
	}
}

func (n *Node) drop(c *conn) {
	n.mu.Lock()
	delete(n.conns, c)
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
	timeout time.Duration                 // of each write
	// after holds what starts once the frame being answered has been
	// written: a stream's first notification never precedes the subscribe
	// response that names it. Only the connection's read loop touches it.
	after []func()
}

func (c *conn) send(ctx context.Context, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(ctx, websocket.MessageText, b)
}

// writeLocked writes b; the caller holds c.wmu.
func (c *conn) writeLocked(ctx context.Context, typ websocket.MessageType, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.ws.Write(ctx, typ, b)
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
	big     int             // ethsim_bytes: a result string of this many bytes
	isBig   bool
}

// filler is what ethsim_bytes answers with, repeated.
var filler = []byte(strings.Repeat("0123456789abcdef", 64))

// encode is the response as a message; an ethsim_bytes answer is built
// directly rather than marshalled, as it may be megabytes.
func (r response) encode() []byte {
	if !r.isBig {
		return mustJSON(r)
	}
	b := make([]byte, 0, r.big+len(r.ID)+40)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, r.ID...)
	b = append(b, `,"result":"`...)
	for left := r.big; left > 0; left -= len(filler) {
		b = append(b, filler[:min(left, len(filler))]...)
	}
	return append(b, `"}`...)
}

// MarshalJSON encodes an ethsim_bytes answer inside a batch.
func (r response) MarshalJSON() ([]byte, error) {
	if r.isBig {
		return r.encode(), nil
	}
	type plain response
	return json.Marshal(plain(r))
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// answer is what the node does with one message.
type answer struct {
	typ       websocket.MessageType
	out       []byte // nil: no answer
	closeCode websocket.StatusCode
	closeText string // with closeCode: close after out
}

// handle answers one message: a call, a notification (no answer), a batch,
// or, with Echo, anything else.
func (n *Node) handle(c *conn, typ websocket.MessageType, data []byte) answer {
	a := answer{typ: websocket.MessageText}
	first := firstByte(data)
	if n.cfg.Echo && (typ == websocket.MessageBinary || first != '{' && first != '[') {
		a.typ, a.out = typ, data
		return a
	}
	if typ != websocket.MessageText {
		return a
	}
	if first != '[' {
		r, ok := n.call(c, data, &a)
		if ok && a.closeCode == 0 {
			a.out = r.encode()
		}
		return a
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(data, &batch); err != nil {
		a.out = mustJSON(response{Version: "2.0", ID: json.RawMessage("null"), Error: &rpcError{-32700, "parse error"}})
		return a
	}
	if len(batch) == 0 {
		a.out = mustJSON(response{Version: "2.0", ID: json.RawMessage("null"), Error: &rpcError{-32600, "empty batch"}})
		return a
	}
	if len(batch) > n.cfg.MaxBatch {
		a.out = mustJSON(response{Version: "2.0", ID: json.RawMessage("null"), Error: &rpcError{-32600, "batch too large"}})
		return a
	}
	var out []response
	var inBatch answer
	for _, item := range batch {
		if r, ok := n.call(c, item, &inBatch); ok {
			out = append(out, r)
		}
	}
	// a close asked for in a batch is ignored
	if len(out) > 0 {
		a.out = mustJSON(out)
	}
	return a
}

func firstByte(data []byte) byte {
	for _, b := range data {
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return b
		}
	}
	return 0
}

// call answers one request, noting in a the close it asks for; ok is false
// for a notification, which has no answer.
func (n *Node) call(c *conn, data []byte, a *answer) (r response, ok bool) {
	n.calls.Add(1)
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
		id := fmt.Sprintf("0x%032x", n.cfg.SubscriptionIDBase+n.nextID.Add(1))
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
	case "ethsim_hang":
		if n.cfg.TestMethods {
			n.hanging.Add(1)
			return response{}, false // never answered, as a node that died mid-call
		}
		res.Error = &rpcError{-32601, "the method " + req.Method + " does not exist/is not available"}
	default:
		if !n.cfg.TestMethods || !n.testMethod(&req, &res, a) {
			res.Error = &rpcError{-32601, "the method " + req.Method + " does not exist/is not available"}
		}
	}
	return res, true
}

// testMethod answers the methods of Config.TestMethods, reporting whether
// req is one.
func (n *Node) testMethod(req *request, res *response, a *answer) bool {
	var args [2]json.RawMessage
	copy(args[:], req.Params)
	switch req.Method {
	case "ethsim_bytes":
		var size int
		if json.Unmarshal(args[0], &size) != nil || size < 0 || size > n.cfg.MaxBytes {
			res.Error = &rpcError{-32602, fmt.Sprintf("ethsim_bytes: want a size from 0 to %d", n.cfg.MaxBytes)}
			return true
		}
		res.big, res.isBig = size, true
	case "ethsim_close":
		var code int
		var text string
		if json.Unmarshal(args[0], &code) != nil || code < 1000 || code > 4999 {
			res.Error = &rpcError{-32602, "ethsim_close: want a close code"}
			return true
		}
		_ = json.Unmarshal(args[1], &text)
		a.closeCode, a.closeText = websocket.StatusCode(code), text
		res.Result = true // answered only inside a batch, where the close is ignored
	default:
		return false
	}
	return true
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`)
	}
	return b
}
