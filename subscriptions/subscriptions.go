// Package subscriptions is the JSON-RPC pub/sub bookkeeping of one client
// connection, independent of the transport, so that the client's
// subscriptions outlive the upstream connection they were opened on.
//
// As alloy-pubsub's subscription manager and go-ethereum's notifier, a
// Conn keeps each subscription under a local id, the one the client was
// given, and the upstream (server) id it currently has, which changes when
// the connection moves to another upstream. It remembers each
// subscription's original eth_subscribe params to re-create it there, and
// the requests in flight, to answer each exactly once when their upstream
// is lost. It rewrites, byte for byte and in place where it can, the
// subscription field of notifications (upstream id → local id), the param
// of eth_unsubscribe (local → upstream id) and, when an upstream hands out
// an id the client already holds for another subscription, the result of
// the eth_subscribe answer; nothing else in a message is re-encoded.
//
// The transport calls, for each message:
//
//   - FromClient, for a message from the client, once it knows the
//     message's sequence number, and ToUpstream on it just before writing
//     it upstream when FromClient said Rewrite;
//   - FromUpstream, for a message from the upstream, before it forwards it;
//   - Lost when the upstream is gone, with the sequence number of the last
//     message it wrote there: it returns the answers the client is owed;
//     then Resubscribe, whose requests go to the next upstream before
//     any client request, and Ready once their answers have come back
//     through FromUpstream.
//
// Messages must be valid JSON (the transport validates them): the
// bookkeeping reads only the fields it needs, matching keys byte for byte
// as nodes write them, and on anything else forwards the message
// unchanged. A Conn is safe for concurrent use by a connection's two
// directions.
package subscriptions

import (
	"encoding/hex"
	"errors"
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"sync"
)

// Config bounds one connection's bookkeeping.
type Config struct {
	// MaxSubscriptions is the most subscriptions a connection holds, active
	// and being opened (default 100); an eth_subscribe beyond it is
	// refused with -32005.
	MaxSubscriptions int
	// MaxInFlight is the most requests a connection has sent upstream and
	// not yet had answered (default 4096); a request beyond it is refused
	// with -32005.
	MaxInFlight int
	// MaxBytes bounds what the bookkeeping keeps of a connection's
	// messages: the ids of the requests in flight and the params of its
	// subscriptions (default 256 KiB); a request beyond it is refused with
	// -32005, as a client could otherwise make the edge hold its messages.
	MaxBytes int
	// HeadWindow is how many recent newHeads block hashes each newHeads
	// subscription remembers to suppress duplicates after a move (default
	// 16, 8 bytes each: more than a healthy upstream lags).
	HeadWindow int
}

func (c *Config) setDefaults() {
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 100
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 4096
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 256 << 10
	}
	if c.HeadWindow <= 0 {
		c.HeadWindow = 16
	}
}

// Verdict is what the transport does with a message.
type Verdict uint8

const (
	// Forward: send the message on, as returned.
	Forward Verdict = iota
	// Rewrite: send the client's message on, through ToUpstream just
	// before it is written (it names a subscription by its local id).
	Rewrite
	// Refuse: do not send the client's message upstream; the client gets
	// the answer returned instead.
	Refuse
	// Absorb: an upstream's answer to a request the bookkeeping sent on
	// its own (Resubscribe); keep it from the client.
	Absorb
	// Duplicate: a newHeads notification of a block the client has
	// received already (after a move); keep it from the client.
	Duplicate
)

func (v Verdict) String() string {
	switch v {
	case Forward:
		return "forward"
	case Rewrite:
		return "rewrite"
	case Refuse:
		return "refuse"
	case Absorb:
		return "absorb"
	case Duplicate:
		return "duplicate"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// ErrResubscribeRefused reports an upstream that refused to re-create a
// subscription after a move: the client's subscription is gone.
var ErrResubscribeRefused = errors.New("subscriptions: the upstream refused to re-create a subscription")

// Error codes and messages of the answers the bookkeeping gives.
const (
	CodeLost    = -32603
	MessageLost = "upstream connection lost, retry"
	CodeLimit   = -32005
)

// Conn is one client connection's bookkeeping. Its zero value is not
// usable: use New.
type Conn struct {
	mu  sync.Mutex
	cfg Config

	byLocal map[string]*sub // by the local id, a raw JSON value
	byUp    map[string]*sub // by the current upstream id
	// pending are the client's eth_subscribe requests in flight, by raw
	// request id, with their params.
	pending map[string][]byte
	// unsubscribing are the client's eth_unsubscribe requests in flight,
	// by raw request id.
	unsubscribing map[string]*sub
	// resubscribing are the requests of Resubscribe not yet answered, by
	// raw request id.
	resubscribing map[string]*sub
	reqs          inflight
	params        int  // bytes of the params kept, pending and active
	moved         bool // the connection has moved at least once
	seed          maphash.Seed
	edgeTag       string // of the edge's own request ids
	edgeSeq       uint64
	edits         []edit // scratch for FromUpstream
	err           error
}

// sub is one subscription.
type sub struct {
	local, up string // raw JSON values; up is "" while being re-created
	params    []byte // of the original eth_subscribe
	heads     *window
}

// New returns the bookkeeping of a new connection.
func New(cfg Config) *Conn {
	cfg.setDefaults()
	return &Conn{cfg: cfg}
}

// Len is the number of subscriptions active or being opened.
func (c *Conn) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byLocal) + len(c.pending)
}

// InFlight is the number of requests sent and not answered.
func (c *Conn) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs.live
}

// Err reports a subscription the bookkeeping could not keep
// (ErrResubscribeRefused): the transport should close the client's
// connection, as the client would otherwise wait for notifications that
// never come.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// FromClient notes message seq from the client: its requests are in
// flight, its eth_subscribe requests are subscriptions being opened, its
// eth_unsubscribe requests end theirs. It returns Forward or Rewrite, or
// Refuse with the answer the client gets instead when the message would
// exceed MaxSubscriptions or MaxInFlight (a batch is refused whole: it
// cannot be sent in part).
func (c *Conn) FromClient(seq uint64, msg []byte) (Verdict, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	subs, reqs, unsub, size := 0, 0, false, 0
	var e envelope
	for it := newElements(msg); it.next(&e); {
		if !e.hasID() || len(e.method) == 0 || !validID(e.id) {
			continue
		}
		reqs++
		size += len(e.id)
		switch string(e.method) {
		case `"eth_subscribe"`:
			subs++
			size += len(e.params)
		case `"eth_unsubscribe"`:
			unsub = true
		}
	}
	batch := newElements(msg).batch
	if reqs == 0 {
		return Forward, nil
	}
	if have := len(c.byLocal) + len(c.pending); subs > 0 && have+subs > c.cfg.MaxSubscriptions {
		return Refuse, refusal(msg, batch, "too many subscriptions on this connection (limit "+strconv.Itoa(c.cfg.MaxSubscriptions)+")")
	}
	if c.reqs.live+reqs > c.cfg.MaxInFlight {
		return Refuse, refusal(msg, batch, "too many requests in flight on this connection (limit "+strconv.Itoa(c.cfg.MaxInFlight)+")")
	}
	if c.reqs.bytes+c.params+size > c.cfg.MaxBytes {
		return Refuse, refusal(msg, batch, "request ids and subscription params too large for this connection (limit "+strconv.Itoa(c.cfg.MaxBytes)+" bytes)")
	}
	for it := newElements(msg); it.next(&e); {
		if !e.hasID() || len(e.method) == 0 || !validID(e.id) {
			continue
		}
		c.reqs.add(seq, e.id, batch)
		switch string(e.method) {
		case `"eth_subscribe"`:
			if c.pending == nil {
				c.pending = map[string][]byte{}
			}
			c.pending[string(e.id)] = append([]byte(nil), e.params...)
			c.params += len(e.params)
		case `"eth_unsubscribe"`:
			if s := c.byLocal[string(firstParam(e.params))]; s != nil {
				if c.unsubscribing == nil {
					c.unsubscribing = map[string]*sub{}
				}
				c.unsubscribing[string(e.id)] = s
			}
		}
	}
	if unsub {
		// Rewritten when written, with the ids of the upstream of the
		// moment: the message may wait for a move to end.
		return Rewrite, nil
	}
	return Forward, nil
}

// refusal answers each request of msg with -32005 and text.
func refusal(msg []byte, batch bool, text string) []byte {
	var out []byte
	if batch {
		out = append(out, '[')
	}
	n := 0
	var e envelope
	for it := newElements(msg); it.next(&e); {
		if !e.hasID() || len(e.method) == 0 || !validID(e.id) {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = AppendError(out, e.id, CodeLimit, text)
	}
	if batch {
		out = append(out, ']')
	}
	return out
}

// AppendError appends a JSON-RPC error answer to request id (raw JSON).
func AppendError(dst, id []byte, code int, message string) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, id...)
	dst = append(dst, `,"error":{"code":`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"message":`...)
	dst = strconv.AppendQuote(dst, message)
	return append(dst, "}}"...)
}

// ToUpstream returns msg as the current upstream must receive it: the
// param of each eth_unsubscribe naming a subscription by its local id
// replaced with the subscription's upstream id (in msg's memory when its
// capacity allows). A subscription being re-created keeps its local id.
func (c *Conn) ToUpstream(msg []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.edits = c.edits[:0]
	var e envelope
	for it := newElements(msg); it.next(&e); {
		if string(e.method) != `"eth_unsubscribe"` {
			continue
		}
		id := firstParam(e.params)
		if s := c.byLocal[string(id)]; s != nil && s.up != "" && s.up != s.local {
			c.edits = append(c.edits, edit{at: offset(msg, id), n: len(id), with: s.up})
		}
	}
	return c.apply(msg)
}

// FromUpstream returns what the transport does with msg from the upstream,
// and msg as the client must receive it (rewritten in msg's memory when its
// capacity allows): a notification carries its subscription's local id, an
// answer to an eth_subscribe a fresh local id if the client holds the one
// the upstream gave for another subscription. Answers to the bookkeeping's
// own requests are Absorb, heads the client has already received after a
// move are Duplicate (rewritten all the same: they are recorded with the
// client's id).
func (c *Conn) FromUpstream(msg []byte) ([]byte, Verdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.edits = c.edits[:0]
	v := Forward
	var e envelope
	it := newElements(msg)
	for it.next(&e) {
		switch {
		case string(e.method) == `"eth_subscription"`:
			if c.notification(msg, &e) {
				v = Duplicate
			}
		case len(e.method) == 0 && e.hasID():
			if c.answer(msg, &e) {
				v = Absorb
			}
		}
	}
	if it.batch && v != Forward {
		v = Forward // only a lone message can be kept back
	}
	return c.apply(msg), v
}

// notification rewrites a notification's subscription id for the client,
// and reports a duplicate head.
func (c *Conn) notification(msg []byte, e *envelope) (dup bool) {
	var up, result []byte
	w := walker{b: e.params}
	o := w.object()
	for k, v, more := o.next(); more; k, v, more = o.next() {
		switch string(k) {
		case `"subscription"`:
			up = v
		case `"result"`:
			result = v
		}
	}
	s := c.byUp[string(up)]
	if s == nil {
		return false
	}
	if s.up != s.local { // a duplicate too: it is recorded with the client's id
		c.edits = append(c.edits, edit{at: offset(msg, up), n: len(up), with: s.local})
	}
	if s.heads != nil {
		if h := field(result, `"hash"`); h != nil {
			d := maphash.Bytes(c.seed, h)
			if c.moved && s.heads.has(d) {
				return true
			}
			s.heads.add(d)
		}
	}
	return false
}

// answer notes an answer to request e.id, and reports one to the
// bookkeeping's own.
func (c *Conn) answer(msg []byte, e *envelope) (own bool) {
	id := string(e.id)
	if s, ok := c.resubscribing[id]; ok {
		delete(c.resubscribing, id)
		if e.isError() || len(e.result) == 0 || isNull(e.result) {
			c.err = ErrResubscribeRefused
			return true
		}
		s.up = string(e.result)
		c.byUp[s.up] = s
		return true
	}
	c.reqs.answered(e.id)
	if params, ok := c.pending[id]; ok {
		delete(c.pending, id)
		if !e.isError() && len(e.result) > 0 && !isNull(e.result) {
			c.opened(msg, e.result, params)
		} else {
			c.params -= len(params)
		}
		return false
	}
	if s, ok := c.unsubscribing[id]; ok {
		delete(c.unsubscribing, id)
		if !e.isError() && c.byLocal[s.local] == s {
			c.params -= len(s.params)
			delete(c.byLocal, s.local)
			if c.byUp[s.up] == s {
				delete(c.byUp, s.up)
			}
		}
	}
	return false
}

// opened adds the subscription an eth_subscribe answer (result, in msg)
// opened. Its local id is the upstream's, unless the client holds that
// one already (ids from another upstream): then a fresh one, written into
// the answer.
func (c *Conn) opened(msg, result, params []byte) {
	s := &sub{local: string(result), up: string(result), params: params}
	if _, taken := c.byLocal[s.local]; taken {
		s.local = c.freshID()
		c.edits = append(c.edits, edit{at: offset(msg, result), n: len(result), with: s.local})
	}
	if string(firstParam(params)) == `"newHeads"` {
		s.heads = newWindow(c.cfg.HeadWindow)
		if c.seed == (maphash.Seed{}) {
			c.seed = maphash.MakeSeed()
		}
	}
	if c.byLocal == nil {
		c.byLocal, c.byUp = map[string]*sub{}, map[string]*sub{}
	}
	c.byLocal[s.local] = s
	c.byUp[s.up] = s
}

// freshID is a local id no subscription of the connection holds, shaped as
// geth's: a JSON string of 0x and 32 hex digits.
func (c *Conn) freshID() string {
	for {
		var b [16]byte
		for i := range b {
			b[i] = byte(rand.Uint32())
		}
		id := `"0x` + hex.EncodeToString(b[:]) + `"`
		if _, taken := c.byLocal[id]; !taken {
			return id
		}
	}
}

// Lost answers and forgets the requests in flight on an upstream that is
// gone: those of the client's messages up to seq written (the transport
// wrote them, or tried to: they may have been executed), each message's
// requests with one answer (an array for a batch) of error -32603,
// "upstream connection lost, retry". Requests of later messages stay in
// flight: they have not been sent, and go to the next upstream. A
// subscription whose eth_subscribe was in flight is not opened; one whose
// eth_unsubscribe was in flight stays open (the client is told to retry).
// Every subscription loses its upstream id until Resubscribe re-creates it.
func (c *Conn) Lost(seq uint64) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]byte
	c.reqs.sweep(seq, func(rs []request) {
		var b []byte
		if rs[0].batch {
			b = append(b, '[')
		}
		for i := range rs {
			id := c.reqs.id(&rs[i])
			if params, ok := c.pending[string(id)]; ok {
				c.params -= len(params)
				delete(c.pending, string(id))
			}
			delete(c.unsubscribing, string(id))
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendError(b, id, CodeLost, MessageLost)
		}
		if rs[0].batch {
			b = append(b, ']')
		}
		out = append(out, b)
	})
	clear(c.byUp)
	clear(c.resubscribing)
	for _, s := range c.byLocal {
		s.up = ""
	}
	c.moved = true
	return out
}

// Resubscribe returns the eth_subscribe requests that re-create every
// subscription on the next upstream, with their original params. Their
// answers come back through FromUpstream as Absorb. Send them before any
// client request, and send no client request until Ready: their ids are
// the bookkeeping's own (a JSON string naming the subscription's local id)
// and must not meet a client's in flight.
func (c *Conn) Resubscribe() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.edgeTag == "" {
		c.edgeTag = strconv.FormatUint(rand.Uint64(), 36)
	}
	var out [][]byte
	for _, s := range c.byLocal {
		c.edgeSeq++
		id := `"relaymeter-` + c.edgeTag + "-" + strconv.FormatUint(c.edgeSeq, 10) + ":" + idText(s.local) + `"`
		if c.resubscribing == nil {
			c.resubscribing = map[string]*sub{}
		}
		c.resubscribing[id] = s
		b := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
		b = append(b, `,"method":"eth_subscribe"`...)
		if len(s.params) > 0 {
			b = append(b, `,"params":`...)
			b = append(b, s.params...)
		}
		out = append(out, append(b, '}'))
	}
	return out
}

// idText is a JSON string's content, to name it inside another string;
// nothing for another value, which could not be.
func idText(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return ""
}

// Ready reports whether every request of Resubscribe has been answered.
func (c *Conn) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.resubscribing) == 0
}

// Subscription is one subscription's ids, raw JSON values.
type Subscription struct {
	Local, Upstream string // Upstream is "" while being re-created
}

// Subscriptions lists the active subscriptions.
func (c *Conn) Subscriptions() []Subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Subscription, 0, len(c.byLocal))
	for _, s := range c.byLocal {
		out = append(out, Subscription{Local: s.local, Upstream: s.up})
	}
	return out
}

// edit replaces msg[at:at+n] with with.
type edit struct {
	at, n int
	with  string
}

// apply makes c.edits to msg, last first so that earlier offsets hold.
func (c *Conn) apply(msg []byte) []byte {
	for i := len(c.edits) - 1; i >= 0; i-- {
		ed := c.edits[i]
		if ed.at < 0 {
			continue
		}
		msg = splice(msg, ed.at, ed.n, ed.with)
	}
	c.edits = c.edits[:0]
	return msg
}

// window is a ring of recent block hash digests.
type window struct {
	h []uint64
	i int
}

func newWindow(n int) *window { return &window{h: make([]uint64, 0, n)} }

func (w *window) has(d uint64) bool {
	for _, x := range w.h {
		if x == d {
			return true
		}
	}
	return false
}

func (w *window) add(d uint64) {
	if len(w.h) < cap(w.h) {
		w.h = append(w.h, d)
		return
	}
	w.h[w.i] = d
	w.i = (w.i + 1) % len(w.h)
}
