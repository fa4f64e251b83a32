package ws

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/subscriptions"
)

// side is one end of a proxied connection.
type side struct {
	name    string // "client" or "upstream"
	conn    *websocket.Conn
	dir     event.Direction // of the messages read from this side
	counter prometheus.Counter

	// writing is set while a message is being written to this side; the
	// deadline timer, armed for each write, ends the connection when a
	// write takes longer than Config.WriteTimeout.
	writing  atomic.Bool
	since    atomic.Int64 // when the write under way began, unix ns
	timeout  time.Duration
	deadline *time.Timer
	// cork holds writes back so that several messages go out together
	// (nil: writes go out one by one).
	cork *corkConn
}

// write writes f to s within the write timeout. Writes take no context: a
// cancellable one costs allocations per call in the library; the deadline
// timer ends a stuck write by closing the connection.
func (s *side) write(f *msgBuf) error {
	s.since.Store(time.Now().UnixNano())
	s.writing.Store(true)
	s.deadline.Reset(s.timeout)
	err := s.conn.Write(context.Background(), f.typ, f.b.Bytes())
	s.deadline.Stop()
	s.writing.Store(false)
	return err
}

// flush sends what writes held back, within the write timeout.
func (s *side) flush() error {
	if s.cork == nil {
		return nil
	}
	s.since.Store(time.Now().UnixNano())
	s.writing.Store(true)
	s.deadline.Reset(s.timeout)
	err := s.cork.flush()
	s.deadline.Stop()
	s.writing.Store(false)
	return err
}

// cause is why a proxied connection ended and how each side is closed.
type cause struct {
	reason string               // recorded in StreamClosed
	code   websocket.StatusCode // recorded in StreamClosed
	// Close codes sent to each side; 0 means the side is already closed
	// (its close frame was answered, or it is gone).
	toClient, toUpstream websocket.StatusCode
	text                 string // close reason sent
}

var (
	shutdownCause = cause{reason: "edge shutting down", code: websocket.StatusGoingAway,
		toClient: websocket.StatusGoingAway, toUpstream: websocket.StatusGoingAway, text: "edge shutting down"}
	recorderFailedCause = cause{reason: "recorder failed", code: websocket.StatusInternalError,
		toClient: websocket.StatusInternalError, toUpstream: websocket.StatusInternalError, text: "metering unavailable"}
	// rejectedCause ends a connection one of whose events will never be
	// durable: its message must not cross.
	rejectedCause = cause{reason: "event rejected", code: websocket.StatusInternalError,
		toClient: websocket.StatusInternalError, toUpstream: websocket.StatusInternalError, text: "metering unavailable"}
	overloadedCause = cause{reason: "edge overloaded", code: websocket.StatusTryAgainLater,
		toClient: websocket.StatusTryAgainLater, toUpstream: websocket.StatusGoingAway, text: "edge overloaded, try again later"}
)

// proxy is one client connection and its upstream. It runs five
// goroutines: a pump per direction, a forwarder per direction under
// ForwardAfterAck, and a pinger.
type proxy struct {
	e        *Edge
	stream   *record.Stream
	app      string
	capture  int64 // how much of each payload is recorded
	client   side
	upstream side
	toUp     dir // client → upstream
	toClient dir // upstream → client
	pending  pendingSubscribes
	limits   connLimits // the client's, of its service

	// Failover, when the route's pool has another upstream (else subs is
	// nil and the upstream never changes): failover.go.
	rt     *route
	member *member // the upstream of the moment; under upMu
	// upNow and memberNow are the upstream connection and member of the
	// moment, for those that must not wait for upMu (a writer holds it
	// while it writes): the write deadline, the pinger, health checks,
	// finish.
	upNow        atomic.Pointer[websocket.Conn]
	memberNow    atomic.Pointer[member]
	subprotocols []string
	subs         *subscriptions.Conn
	upMu         sync.Mutex
	upCond       *sync.Cond
	upReady      bool      // writers may write to the upstream; under upMu
	written      uint64    // ticket of the client message last written upstream; under upMu
	movedAt      time.Time // last move, until its first notification; the upstream→client pump's
	edgeRec      *scratch  // sendEdge's, made on the first move

	ctx    context.Context
	cancel context.CancelFunc
	ending atomic.Bool // finish has begun
	wg     sync.WaitGroup
	once   sync.Once
	cause  cause
}

func newProxy(e *Edge, s *record.Stream, app string, rt *route, m *member, subprotocols []string, client, up *websocket.Conn) *proxy {
	p := &proxy{
		e:            e,
		stream:       s,
		app:          app,
		capture:      rt.capture,
		client:       side{name: "client", conn: client, dir: event.Direction_CLIENT_TO_UPSTREAM, counter: e.m.toUpstream},
		upstream:     side{name: "upstream", conn: up, dir: event.Direction_UPSTREAM_TO_CLIENT, counter: e.m.toClient},
		rt:           rt,
		member:       m,
		subprotocols: subprotocols,
		upReady:      true,
	}
	p.upCond = sync.NewCond(&p.upMu)
	p.upNow.Store(up)
	p.memberNow.Store(m)
	if rt.pool.failover() {
		p.subs = subscriptions.New(subscriptions.Config{MaxSubscriptions: e.cfg.MaxSubscriptions})
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for _, s := range []*side{&p.client, &p.upstream} {
		s.timeout = e.cfg.WriteTimeout
		s.deadline = time.AfterFunc(time.Hour, func() {
			c := p.notReading(s)
			if p.subs != nil && c.reason == "upstream not reading" {
				p.dropUpstream() // another upstream may take the client
				return
			}
			p.finish(c)
		})
		s.deadline.Stop()
	}
	p.toUp = dir{p: p, src: &p.client, dst: &p.upstream}
	p.toClient = dir{p: p, src: &p.upstream, dst: &p.client}
	if e.cfg.Forwarding == ForwardAfterAck {
		p.toUp.q, p.toClient.q = newQueue(), newQueue()
	}
	return p
}

// run proxies until either side ends, and returns once both connections are
// closed and the goroutines have returned; p.cause then says why.
func (p *proxy) run() {
	p.wg.Add(2)
	go p.toUp.pump()
	go p.toClient.pump()
	if p.e.cfg.PingInterval > 0 {
		p.wg.Add(1)
		go p.ping()
	}
	p.wg.Wait()
	p.cancel()
	p.client.deadline.Stop()
	p.upstream.deadline.Stop()
}

// ping pings both sides every interval; a side that does not answer within
// the interval is lost.
func (p *proxy) ping() {
	defer p.wg.Done()
	iv := p.e.cfg.PingInterval
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range []*side{&p.client, &p.upstream} {
			// Not derived from p.ctx: the library closes a connection
			// whose write context ends mid-write, and finish cancels
			// p.ctx before it sends its close frames.
			ctx, cancel := context.WithTimeout(context.Background(), iv)
			conn := s.conn
			if s == &p.upstream {
				conn = p.upConn()
			}
			err := conn.Ping(ctx)
			cancel()
			if s == &p.upstream && p.subs != nil && err != nil {
				if !p.ending.Load() {
					conn.CloseNow() // the pump moves the client
				}
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				// Closed by a close handshake or by finish: the pump
				// reading s reports why, not the ping that raced it.
				return
			}
			if err != nil {
				c := p.lost(s, err)
				if s.writing.Load() {
					c = p.notReading(s) // the ping waited behind a stuck write
				}
				p.finish(c)
				return
			}
		}
	}
}

// other is the side across from s.
func (p *proxy) other(s *side) *side {
	if s == &p.client {
		return &p.upstream
	}
	return &p.client
}

// lost is the cause when reading from, writing to or pinging s failed with
// err: s closed with a code (passed on to the other side), or s is gone.
func (p *proxy) lost(s *side, err error) cause {
	if code := websocket.CloseStatus(err); code != -1 {
		var ce websocket.CloseError
		errors.As(err, &ce)
		c := cause{reason: s.name + " closed", code: code, text: ce.Reason}
		if s == &p.client {
			c.toUpstream = code
		} else {
			c.toClient = code
		}
		return c
	}
	if !p.ending.Load() {
		p.e.log.Info("ws: connection lost", "side", s.name, "stream", p.stream.ID(), "err", err)
	}
	if s == &p.client {
		return cause{reason: "client lost", code: websocket.StatusAbnormalClosure, toUpstream: websocket.StatusGoingAway, text: "client went away"}
	}
	return cause{reason: "upstream lost", code: websocket.StatusAbnormalClosure, toClient: websocket.StatusInternalError, text: "upstream connection lost"}
}

// notReading is the cause when s does not take what the edge writes: a
// write to it (or a ping behind one) did not complete in time. A client is
// closed with 1008; an upstream's client with 1011.
func (p *proxy) notReading(s *side) cause {
	// Both sides stuck: the one whose write has waited longer stopped
	// reading first, and the other is held up by the back-pressure it
	// causes (an upstream blocked writing to the edge, which stopped
	// reading it for a client that does not read).
	if o := p.other(s); o.writing.Load() && o.since.Load() < s.since.Load() {
		s = o
	}
	if !p.ending.Load() {
		p.e.log.Warn("ws: "+s.name+" not reading, closing", "stream", p.stream.ID(), "application", p.app)
		p.e.m.notReading.WithLabelValues(s.name).Inc()
	}
	if s == &p.client {
		return cause{reason: "client not reading", code: websocket.StatusPolicyViolation,
			toClient: websocket.StatusPolicyViolation, toUpstream: websocket.StatusGoingAway, text: "client not reading"}
	}
	return cause{reason: "upstream not reading", code: websocket.StatusInternalError,
		toClient: websocket.StatusInternalError, toUpstream: websocket.StatusPolicyViolation, text: "upstream not reading"}
}

// readFailed is the cause when reading a message from s into a buffer, or
// classifying it, failed with err; nil when the connection is ending anyway.
func (p *proxy) readFailed(s *side, err error) *cause {
	var c cause
	switch {
	case errors.Is(err, errTooBig):
		c = cause{reason: s.name + " message too big", code: websocket.StatusMessageTooBig,
			toClient: websocket.StatusMessageTooBig, toUpstream: websocket.StatusMessageTooBig, text: "message too big"}
	case errors.Is(err, errBatchTooLarge):
		c = cause{reason: s.name + " batch too large", code: websocket.StatusMessageTooBig,
			toClient: websocket.StatusMessageTooBig, toUpstream: websocket.StatusMessageTooBig, text: "batch too large"}
	case errors.Is(err, errOverloaded):
		if !p.ending.Load() {
			p.e.m.overloaded.Inc()
		}
		p.e.log.Warn("ws: edge buffers exhausted, closing", "stream", p.stream.ID(), "application", p.app, "err", err)
		c = overloadedCause
	case p.ctx.Err() != nil:
		return nil
	default:
		c = p.lost(s, err)
	}
	return &c
}

// finish ends the connection for c unless it is already ending: it stops
// the goroutines' waits, releases the queued frames, then closes both sides
// with c's codes (concurrently, each handshake bounded by the library).
func (p *proxy) finish(c cause) {
	won := false
	p.once.Do(func() { p.cause, won = c, true })
	if !won {
		return
	}
	p.ending.Store(true)
	p.cancel()
	for _, d := range []*dir{&p.toUp, &p.toClient} {
		if d.q != nil {
			for _, f := range d.q.drop() {
				p.e.bufs.put(f)
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		closeSide(p.upNow.Load(), c.toUpstream, c.text)
	}()
	closeSide(p.client.conn, c.toClient, c.text)
	<-done
	p.upMu.Lock()
	p.upCond.Broadcast() // writers waiting for a move give up
	p.upMu.Unlock()
}

func closeSide(c *websocket.Conn, code websocket.StatusCode, text string) {
	if code == 0 {
		_ = c.CloseNow()
		return
	}
	_ = c.Close(code, text)
}
