package ws

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
)

// side is one end of a proxied connection.
type side struct {
	name    string // "client" or "upstream"
	conn    *websocket.Conn
	dir     event.Direction // of the messages read from this side
	counter prometheus.Counter
	// forwarded is the highest seq of this side's messages written to the
	// other side. A direction forwards in seq order, so every message of
	// it up to forwarded crossed and none after it did. Written by the
	// goroutine that forwards, read once run has returned.
	forwarded uint64
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

// proxy is one client connection and its upstream. It runs three
// goroutines: one pump per direction and one pinger.
type proxy struct {
	e        *Edge
	stream   *record.Stream
	client   side
	upstream side
	subs     subscriptions

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	cause  cause
}

func newProxy(e *Edge, s *record.Stream, client, up *websocket.Conn) *proxy {
	p := &proxy{
		e:        e,
		stream:   s,
		client:   side{name: "client", conn: client, dir: event.Direction_CLIENT_TO_UPSTREAM, counter: e.m.toUpstream},
		upstream: side{name: "upstream", conn: up, dir: event.Direction_UPSTREAM_TO_CLIENT, counter: e.m.toClient},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// run proxies until either side ends, and returns once both connections are
// closed and the goroutines have returned; p.cause then says why.
func (p *proxy) run() {
	p.wg.Add(2)
	go p.pump(&p.client, &p.upstream)
	go p.pump(&p.upstream, &p.client)
	if p.e.cfg.PingInterval > 0 {
		p.wg.Add(1)
		go p.ping()
	}
	p.wg.Wait()
	p.cancel()
}

// forwardWindow is how many messages of one direction may wait for their
// acknowledgement under ForwardAfterAck: one stream's throughput is this
// window per produce round trip.
const forwardWindow = 256

// frame is a message read from one side, recorded as seq, on its way to
// the other side.
type frame struct {
	typ websocket.MessageType
	buf *[]byte
	seq uint64
}

// pump reads messages from src and records each, then forwards it to dst:
// inline after queueing it (ForwardAfterQueue), or through a forwarder
// goroutine that first waits for Kafka to acknowledge it (ForwardAfterAck).
// Either way a direction's seq order is its forwarding order.
func (p *proxy) pump(src, dst *side) {
	defer p.wg.Done()
	var (
		m   event.Message
		sum [32]byte
		lr  io.LimitedReader
	)
	afterAck := p.e.cfg.Forwarding == ForwardAfterAck
	var (
		fwd  chan frame
		done chan struct{}
	)
	if afterAck {
		fwd, done = make(chan frame, forwardWindow), make(chan struct{})
		go p.forward(src, dst, fwd, done)
	}
	// drain waits until the frames already read have been forwarded (or
	// the connection is ending), so a client's last request before its
	// close still reaches the upstream.
	drain := func() {
		if fwd != nil {
			close(fwd)
			<-done
			fwd = nil
		}
	}
	defer drain()
	end := func(c cause) {
		drain()
		p.finish(c)
	}
	maxSize, capture := p.e.cfg.MaxMessageSize, p.e.cfg.PayloadCapture
	buf := p.e.getBuf()
	for {
		// Reads and writes take no deadline (a cancellable context costs
		// allocations per call in the library): finish unblocks them by
		// closing the connections.
		typ, rd, err := src.conn.Reader(context.Background())
		if err != nil {
			end(p.lost(src, err))
			return
		}
		lr.R, lr.N = rd, maxSize+1
		*buf, err = readAll(&lr, (*buf)[:0])
		if err != nil {
			end(p.lost(src, err))
			return
		}
		if int64(len(*buf)) > maxSize {
			end(cause{reason: src.name + " message too big", code: websocket.StatusMessageTooBig,
				toClient: websocket.StatusMessageTooBig, toUpstream: websocket.StatusMessageTooBig, text: "message too big"})
			return
		}
		m = event.Message{
			Direction:   src.dir,
			WireSize:    uint64(len(*buf)),
			PayloadSize: uint64(len(*buf)),
			Binary:      typ == websocket.MessageBinary,
		}
		classify(&m, *buf, &p.subs)
		m.Payload, sum = record.Payload(capture, *buf)
		m.PayloadSha256 = sum[:]
		seq, err := p.stream.Append(p.ctx, &m)
		if errors.Is(err, record.ErrEventTooLarge) {
			// A huge batch's method list with a large capture: keep the
			// metering fields, drop the captured bytes (sha256 remains).
			m.Payload = nil
			seq, err = p.stream.Append(p.ctx, &m)
		}
		if err != nil {
			if p.ctx.Err() == nil {
				p.e.log.Error("ws: record", "stream", p.stream.ID(), "err", err)
			}
			p.finish(cause{reason: "recorder failed", code: websocket.StatusInternalError,
				toClient: websocket.StatusInternalError, toUpstream: websocket.StatusInternalError, text: "metering unavailable"})
			return
		}
		if afterAck {
			select {
			case fwd <- frame{typ: typ, buf: buf, seq: seq}:
			case <-p.ctx.Done():
				return
			}
			src.counter.Inc()
			buf = p.e.getBuf()
			continue
		}
		if err := dst.conn.Write(context.Background(), typ, *buf); err != nil {
			p.finish(p.lost(dst, err))
			return
		}
		src.forwarded = seq
		src.counter.Inc()
		if cap(*buf) > 64<<10 {
			buf = p.e.getBuf() // do not hold a large buffer for the connection's life
		}
	}
}

// forward writes src's frames to dst in order, each once its event is
// durable. It drains fwd until pump closes it.
func (p *proxy) forward(src, dst *side, fwd <-chan frame, done chan<- struct{}) {
	defer close(done)
	failed := false
	for f := range fwd {
		if !failed {
			if err := p.stream.WaitDurable(p.ctx, f.seq); err != nil {
				failed = true
				if errors.Is(err, record.ErrRejected) {
					p.e.log.Error("ws: event rejected", "stream", p.stream.ID(), "seq", f.seq, "err", err)
					p.finish(rejectedCause)
				}
			} else if err := dst.conn.Write(context.Background(), f.typ, *f.buf); err != nil {
				p.finish(p.lost(dst, err))
				failed = true
			} else {
				src.forwarded = f.seq
			}
		}
		p.e.putBuf(f.buf)
	}
}

// rejectedCause ends a connection one of whose events will never be
// durable: its message must not cross.
var rejectedCause = cause{reason: "event rejected", code: websocket.StatusInternalError,
	toClient: websocket.StatusInternalError, toUpstream: websocket.StatusInternalError, text: "metering unavailable"}

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
			ctx, cancel := context.WithTimeout(p.ctx, iv)
			err := s.conn.Ping(ctx)
			cancel()
			if errors.Is(err, net.ErrClosed) {
				// Closed by a close handshake or by finish: the pump
				// reading s reports why, not the ping that raced it.
				return
			}
			if err != nil {
				p.finish(p.lost(s, err))
				return
			}
		}
	}
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
	if p.ctx.Err() == nil {
		p.e.log.Info("ws: connection lost", "side", s.name, "stream", p.stream.ID(), "err", err)
	}
	if s == &p.client {
		return cause{reason: "client lost", code: websocket.StatusAbnormalClosure, toUpstream: websocket.StatusGoingAway, text: "client went away"}
	}
	return cause{reason: "upstream lost", code: websocket.StatusAbnormalClosure, toClient: websocket.StatusInternalError, text: "upstream connection lost"}
}

// finish ends the connection for c unless it is already ending: it closes
// both sides with c's codes (concurrently, each handshake bounded by the
// library), then stops the goroutines.
func (p *proxy) finish(c cause) {
	won := false
	p.once.Do(func() { p.cause, won = c, true })
	if !won {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		closeSide(p.upstream.conn, c.toUpstream, c.text)
	}()
	closeSide(p.client.conn, c.toClient, c.text)
	<-done
	p.cancel()
}

func closeSide(c *websocket.Conn, code websocket.StatusCode, text string) {
	if code == 0 {
		_ = c.CloseNow()
		return
	}
	_ = c.Close(code, text)
}

// readAll appends everything r yields to buf.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
