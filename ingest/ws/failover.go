package ws

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/subscriptions"
)

// Failover: a client whose upstream is lost moves to another upstream of
// its route's pool without its connection closing (docs/websocket.md,
// "Failover").
//
// The upstream→client pump owns the move: it is the one that learns the
// upstream is gone (its read fails; a writer, the pinger, the write
// deadline or the pool's health check make it fail by closing the
// connection). It stops the writers toward the upstream (upReady false),
// answers the requests that were in flight there, dials another healthy
// upstream, re-creates every subscription there with the edge's own
// eth_subscribe requests, and goes back to reading. Client messages wait
// until the re-subscriptions are answered (Ready), so the edge's request
// ids never meet a client's in flight, and a client request is never sent
// twice: those written to the lost upstream are answered -32603, those
// still queued go to the next one.

// kind says what a message is to the edge, beyond its direction.
type kind uint8

const (
	fromPeer kind = iota // read from one side, forwarded to the other
	fromEdge             // written by the edge itself
	absorbed             // read from one side and kept from the other on purpose
)

// canMove reports whether the upstream read failure err can be taken over
// by another upstream: the pool has one, the connection is not ending, and
// the upstream did not close for something the client did (it would do it
// again).
func (p *proxy) canMove(err error) bool {
	if p.subs == nil || p.ending.Load() || p.ctx.Err() != nil {
		return false
	}
	switch websocket.CloseStatus(err) {
	case websocket.StatusPolicyViolation, websocket.StatusMessageTooBig,
		websocket.StatusUnsupportedData, websocket.StatusInvalidFramePayloadData:
		return false
	}
	return true
}

// upConn is the upstream connection of the moment.
func (p *proxy) upConn() *websocket.Conn { return p.upNow.Load() }

// dropUpstream closes the upstream connection so that the pump moves the
// client (or ends it, without another upstream).
func (p *proxy) dropUpstream() { p.upConn().CloseNow() }

// move replaces the lost upstream (lost with err). It reports false with
// the cause to end the connection with when no other upstream takes the
// client (nil: the connection is ending anyway).
func (p *proxy) move(err error) (*cause, bool) {
	start := time.Now()
	p.upstream.conn.CloseNow() // a writer stuck on it returns
	p.upMu.Lock()
	p.upReady = false
	written, from := p.written, p.member
	p.upMu.Unlock()
	p.e.log.Info("ws: upstream lost, moving the client", "stream", p.stream.ID(), "service", p.rt.service,
		"upstream", from.redacted, "err", scrubURL(err, from.upstream, from.redacted))
	for _, ans := range p.subs.Lost(written) {
		if !p.answer(ans) {
			return nil, false
		}
	}
	conn, to := p.e.dialPool(p.ctx, p.rt, p.subprotocols, from)
	if conn == nil {
		p.e.m.failovers.WithLabelValues("failed").Inc()
		if p.ending.Load() {
			return nil, false
		}
		p.e.log.Warn("ws: no other upstream for the client, closing", "stream", p.stream.ID(), "service", p.rt.service)
		c := noUpstreamCause
		return &c, false
	}
	p.upMu.Lock()
	defer p.upMu.Unlock()
	if p.ending.Load() {
		conn.CloseNow()
		return nil, false
	}
	from.leave(p)
	to.join(p)
	p.member, p.upstream.conn, p.movedAt = to, conn, start
	p.upNow.Store(conn)
	p.memberNow.Store(to)
	if p.ending.Load() { // finish may have closed the old one just now
		conn.CloseNow()
		return nil, false
	}
	p.e.m.failovers.WithLabelValues("moved").Inc()
	reqs := p.subs.Resubscribe()
	for _, r := range reqs {
		if !p.sendEdge(r) {
			conn.CloseNow() // the pump's next read fails: another move, or the end
			return nil, true
		}
	}
	if len(reqs) == 0 {
		p.readyLocked()
	} else {
		// An upstream that never answers is lost too.
		time.AfterFunc(p.e.cfg.DialTimeout, func() {
			p.upMu.Lock()
			stuck := !p.upReady && p.upstream.conn == conn
			p.upMu.Unlock()
			if stuck {
				conn.CloseNow()
			}
		})
	}
	p.e.log.Info("ws: client moved", "stream", p.stream.ID(), "service", p.rt.service, "from", from.redacted, "to", to.redacted,
		"subscriptions", len(reqs), "took", time.Since(start))
	return nil, true
}

// noUpstreamCause ends a client whose upstream is lost when no other
// upstream of its pool takes it.
var noUpstreamCause = cause{reason: "upstream lost, no other upstream", code: websocket.StatusAbnormalClosure,
	toClient: websocket.StatusServiceRestart, text: "upstream connection lost and no healthy upstream: reconnect"}

// resubscribeRefusedCause ends a client one of whose subscriptions the new
// upstream refused to re-create.
var resubscribeRefusedCause = cause{reason: "upstream refused a subscription", code: websocket.StatusInternalError,
	toClient: websocket.StatusInternalError, toUpstream: websocket.StatusNormalClosure, text: "upstream refused to re-create a subscription"}

// ready lets the writers toward the upstream go on.
func (p *proxy) ready() {
	p.upMu.Lock()
	p.readyLocked()
	p.upMu.Unlock()
}

func (p *proxy) readyLocked() {
	p.upReady = true
	p.upCond.Broadcast()
}

// answer gives the client the edge's own answer payload, recorded (origin
// EDGE), in order with what the upstream→client pump forwards; it runs on
// that pump, between two messages.
func (p *proxy) answer(payload []byte) bool {
	d := &p.toClient
	f, ok := p.edgeMessage(payload)
	if !ok {
		return false
	}
	m := &d.ansMsg
	if err := p.classifyMessage(m, &d.cls, event.Direction_UPSTREAM_TO_CLIENT, f); err != nil {
		p.e.bufs.put(f)
		return false
	}
	m.Origin = event.Origin_EDGE
	m.Payload, d.ansSum = record.Payload(p.capture, f.b.Bytes())
	m.PayloadSha256 = d.ansSum[:]
	c, ok := d.inject(f, m)
	if !ok && c != nil {
		p.finish(*c)
	}
	return ok
}

// edgeMessage is a buffer holding payload, the edge's own message.
func (p *proxy) edgeMessage(payload []byte) (*msgBuf, bool) {
	f, err := p.e.bufs.get(p.ctx)
	for err == nil && int64(len(payload)) > int64(f.b.Cap())-1 {
		err = p.e.bufs.grow(p.ctx, f)
	}
	if err != nil {
		if f != nil {
			p.e.bufs.put(f)
		}
		return nil, false
	}
	f.b.Write(payload)
	f.typ, f.kind = websocket.MessageText, fromEdge
	return f, true
}

// sendEdge records payload as the edge's own message to the upstream and
// writes it there once durable (under ForwardAfterAck). p.upMu is held.
func (p *proxy) sendEdge(payload []byte) bool {
	f, ok := p.edgeMessage(payload)
	if !ok {
		return false
	}
	defer p.e.bufs.put(f)
	if p.edgeRec == nil {
		p.edgeRec = new(scratch)
	}
	r := p.edgeRec
	err := p.classifyMessage(&r.m, &r.cls, event.Direction_CLIENT_TO_UPSTREAM, f)
	if err == nil {
		r.m.Origin = event.Origin_EDGE
		f.seq, err = p.appendMessage(&r.m, &r.sum, f)
	}
	if err == nil && p.e.cfg.Forwarding == ForwardAfterAck {
		err = p.stream.WaitDurable(p.ctx, f.seq)
	}
	if err == nil {
		err = p.upstream.write(f)
	}
	return err == nil
}

// fromUpstream passes f, read from the upstream, through the bookkeeping:
// rewritten for the client, or absorbed (an answer to the edge's own
// request, a duplicate head). It reports whether the connection goes on.
func (d *dir) fromUpstream(f *msgBuf) bool {
	p := d.p
	msg := f.b.Bytes()
	out, v := p.subs.FromUpstream(msg)
	if len(out) != len(msg) || len(out) > 0 && &out[0] != &msg[0] {
		f.b.Reset()
		f.b.Write(out)
	}
	switch v {
	case subscriptions.Absorb:
		f.kind = absorbed
		if p.subs.Err() != nil {
			p.finish(resubscribeRefusedCause)
			return false
		}
		if p.subs.Ready() {
			p.ready()
		}
	case subscriptions.Duplicate:
		f.kind = absorbed
		p.e.m.duplicateHeads.Inc()
	}
	return true
}

// fromClient passes f, read from the client and let through by the
// limits, through the bookkeeping: it numbers it for the requests in
// flight and marks it to be rewritten when written; or it returns the
// answer the edge gives instead, beyond the bookkeeping's bounds.
func (d *dir) fromClient(f *msgBuf) (answer []byte) {
	d.n++
	f.ticket = d.n
	v, ans := d.p.subs.FromClient(d.n, f.b.Bytes())
	switch v {
	case subscriptions.Rewrite:
		f.rewrite = true
	case subscriptions.Refuse:
		return ans
	}
	return nil
}

// checkSubscriptions absorbs the client message m (f), let through by the
// limits, with the edge's -32005 answer when it goes beyond the
// subscriptions of a connection: with a pool, beyond the bookkeeping's
// bounds (package subscriptions, which also notes the message); without,
// an eth_subscribe beyond MaxSubscriptions, counted by the classifier.
func (d *dir) checkSubscriptions(m *event.Message, f *msgBuf) {
	p := d.p
	var ans []byte
	switch {
	case p.subs != nil:
		if f.typ == websocket.MessageText {
			ans = d.fromClient(f)
		}
	case m.Role == event.Role_REQUEST && m.BatchSize == 0 && m.Method == "eth_subscribe" && p.pending.count() > p.e.cfg.MaxSubscriptions:
		p.pending.answered(m.RpcId) // not to be opened
		id := nullID
		if len(d.cls.env.id) > 0 && len(d.cls.env.id) <= maxAnswerID {
			id = d.cls.env.id
		}
		ans = subscriptions.AppendError(d.ans[:0], id, subscriptions.CodeLimit,
			"too many subscriptions on this connection (limit "+strconv.Itoa(p.e.cfg.MaxSubscriptions)+")")
	}
	if ans != nil {
		d.verdict, d.ans, m.AbsorbedByEdge = subscriptionsLimit, append(d.ans[:0], ans...), true
		p.e.m.limited[subscriptionsLimit].Inc()
	}
}

// writeUpstream writes f, from the client, to the upstream of the moment,
// once the upstream is ready (not moving). A failed write drops the
// upstream, for the pump to move the client: f counts as sent (it may have
// been), and a request of it is answered -32603 by the move.
func (p *proxy) writeUpstream(f *msgBuf) error {
	p.upMu.Lock()
	for !p.upReady && !p.ending.Load() {
		p.upCond.Wait()
	}
	if p.ending.Load() {
		p.upMu.Unlock()
		return net.ErrClosed
	}
	if f.rewrite {
		msg := f.b.Bytes()
		if out := p.subs.ToUpstream(msg); len(out) != len(msg) || &out[0] != &msg[0] {
			f.b.Reset()
			f.b.Write(out)
		}
	}
	p.written = max(p.written, f.ticket)
	err := p.upstream.write(f)
	conn := p.upstream.conn
	p.upMu.Unlock()
	if err != nil && !p.ending.Load() {
		conn.CloseNow()
		return nil
	}
	return err
}

// dialPool dials a healthy upstream of rt other than not, trying each
// until one answers; nil if none does.
func (e *Edge) dialPool(ctx context.Context, rt *route, subprotocols []string, not *member) (*websocket.Conn, *member) {
	tried := []*member{not}
	for {
		m := rt.pool.pick(tried)
		if m == nil || ctx.Err() != nil {
			return nil, nil
		}
		tried = append(tried, m)
		dctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
		// A transport of its own, never corked: one shared by every dial
		// costs about 5 KiB more per connection.
		httpClient, _ := corkingClient(e.bufs, e.m.socketWrites.WithLabelValues("upstream"))
		conn, _, err := websocket.Dial(dctx, m.upstream, &websocket.DialOptions{
			HTTPClient:      httpClient,
			Subprotocols:    subprotocols,
			CompressionMode: websocket.CompressionDisabled,
		})
		cancel()
		if err != nil {
			e.m.dialErrors.Inc()
			e.log.Warn("ws: upstream unavailable", "service", rt.service, "upstream", m.redacted, "err", scrubURL(err, m.upstream, m.redacted))
			continue
		}
		conn.SetReadLimit(e.cfg.MaxMessageSize + 1)
		return conn, m
	}
}

// onHealth moves the clients of an upstream of pl that turned unhealthy,
// when another upstream is healthy: else they stay where they are.
func (e *Edge) onHealth(pl *pool, m *member, healthy bool) {
	if healthy || pl.pick([]*member{m}) == nil {
		return
	}
	m.mu.Lock()
	ps := make([]*proxy, 0, len(m.proxies))
	for p := range m.proxies {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	for _, p := range ps {
		if p.memberNow.Load() == m {
			p.upConn().CloseNow()
		}
	}
}

// scratch is what recording a message of the edge's own takes, made only
// by the connections that need it: classifier and event are a few KiB.
type scratch struct {
	m   event.Message
	cls classifier
	sum [32]byte
}
