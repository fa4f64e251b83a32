package beam

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/stratum/beam"
)

// conn is one proxied miner connection and its node connection.
type conn struct {
	e            *Edge
	raw          net.Conn // the miner's connection under TLS
	miner, node  net.Conn
	stream       *record.Stream
	ctx          context.Context
	cancel       context.CancelFunc
	once         sync.Once
	reason       string
	toNode, toMi atomic.Uint64 // highest seq forwarded, per direction
	active       atomic.Int64  // unix nanoseconds of the last line read
	busy         atomic.Int32  // lines being recorded and forwarded
}

// attribution is who a login bills.
type attribution struct {
	app, keyID string
}

// handle proxies one miner connection until either side ends.
func (e *Edge) handle(raw net.Conn) {
	defer raw.Close()
	deadline := time.Now().Add(e.cfg.LoginTimeout)
	raw.SetDeadline(deadline)
	miner := raw
	clientSec := event.Security_SECURITY_NONE
	if e.cfg.DownstreamTLS != nil {
		tc := tls.Server(raw, e.cfg.DownstreamTLS)
		if err := tc.Handshake(); err != nil {
			e.m.handshakeFailures.WithLabelValues("miner").Inc()
			e.log.Info("beam: miner TLS handshake failed", "client", raw.RemoteAddr().String(), "err", err)
			return
		}
		miner, clientSec = tc, event.Security_TLS
	}
	mr := beam.NewReader(miner)
	line, err := mr.ReadLine()
	if err != nil {
		e.refuse(raw, "no_login", "no login line", err)
		return
	}
	cls, cerr := beam.Classify(line, beam.MinerToNode)
	var login beam.Login
	if cerr != nil || cls.Method != beam.MethodLogin || mr.Unterminated() || login.Decode(line) != nil {
		e.refuse(raw, "not_login", "first line is not a login", cerr)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rctx, rcancel := context.WithTimeout(ctx, e.cfg.LoginTimeout)
	who, code, reason, rerr := e.attribute(rctx, login.APIKey)
	rcancel()
	if reason != "" {
		if code != 0 {
			res := beam.Result{ID: login.ID, Code: code, Description: code.Description()}
			miner.SetWriteDeadline(time.Now().Add(e.cfg.WriteTimeout))
			beam.NewWriter(miner).WriteMessage(&res)
		}
		e.refuse(raw, reason, "login refused", rerr)
		return
	}
	loginLine := append([]byte(nil), line...)
	raw.SetDeadline(time.Time{})

	node, err := e.dial(ctx)
	if err != nil {
		e.m.dialErrors.Inc()
		e.log.Warn("beam: node unavailable", "upstream", e.cfg.Upstream, "err", err)
		return
	}
	defer node.Close()
	opened := &event.StreamOpened{
		Protocol:         event.Protocol_BEAM,
		Service:          e.cfg.Service,
		Application:      who.app,
		ApiKeyId:         who.keyID,
		Supplier:         e.cfg.Supplier,
		ClientAddr:       raw.RemoteAddr().String(),
		UpstreamAddr:     e.cfg.Upstream,
		ClientSecurity:   clientSec,
		UpstreamSecurity: event.Security_SECURITY_NONE,
		PayloadCapture:   -1,
	}
	if e.cfg.UpstreamTLS != nil {
		opened.UpstreamSecurity = event.Security_TLS
	}
	stream, err := e.cfg.Recorder.Open(ctx, opened)
	if err != nil {
		e.log.Error("beam: open stream", "err", err)
		return
	}
	p := &conn{e: e, raw: raw, miner: miner, node: node, stream: stream, ctx: ctx, cancel: cancel}
	if !e.track(p) {
		p.finish("edge shutting down")
	}
	e.m.conns.Inc()
	e.m.active.Inc()
	p.run(mr, loginLine)
	e.m.active.Dec()
	e.mu.Lock()
	delete(e.conns, p)
	e.mu.Unlock()
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	closed := &event.StreamClosed{Reason: p.reason,
		ForwardedToUpstreamThroughSeq: new(p.toNode.Load()), ForwardedToClientThroughSeq: new(p.toMi.Load())}
	if err := stream.Close(cctx, closed); err != nil {
		e.log.Error("beam: close stream", "stream", stream.ID(), "err", err)
	}
	e.log.Debug("beam: connection closed", "stream", stream.ID(), "reason", p.reason)
}

// refuse ends a connection before its stream opens, counting and logging
// why; err never holds the api key.
func (e *Edge) refuse(c net.Conn, reason, msg string, err error) {
	e.m.refused.WithLabelValues(reason).Inc()
	attrs := []any{"reason", reason, "client", c.RemoteAddr().String()}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	e.log.Info("beam: "+msg, attrs...)
}

// attribute resolves an api key. A non-empty reason refuses the login; a
// non-zero code is then the result to answer it with.
func (e *Edge) attribute(ctx context.Context, key string) (who attribution, code beam.ResultCode, reason string, err error) {
	unknown := func() (attribution, beam.ResultCode, string, error) {
		if e.cfg.RejectUnknownKeys {
			return attribution{}, beam.CodeLoginFailed, "unknown_key", nil
		}
		return attribution{app: UnknownKeyApplication(key)}, 0, "", nil
	}
	if e.cfg.Keys == nil {
		return unknown()
	}
	p, err := e.cfg.Keys.Resolve(ctx, key)
	var re *identity.RefusedError
	switch {
	case errors.As(err, &re) && (re.Reason == "unknown" || re.Reason == "malformed"):
		return unknown()
	case errors.As(err, &re):
		return attribution{}, beam.CodeLoginFailed, "key_refused", err
	case err != nil:
		// The registry cannot be asked: the miner retries later.
		return attribution{}, 0, "registry_unavailable", err
	case p.Role != identity.RoleApplication || p.Application == "":
		return attribution{}, beam.CodeLoginFailed, "not_application_key", nil
	}
	return attribution{app: p.Application, keyID: p.KeyID}, 0, "", nil
}

// dial connects to the node, with TLS when configured.
func (e *Edge) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: e.cfg.DialTimeout}
	if e.cfg.UpstreamTLS == nil {
		return d.DialContext(ctx, "tcp", e.cfg.Upstream)
	}
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
	defer cancel()
	td := tls.Dialer{NetDialer: &d, Config: e.cfg.UpstreamTLS}
	c, err := td.DialContext(dctx, "tcp", e.cfg.Upstream)
	if err != nil {
		var ne net.Error
		if !errors.As(err, &ne) {
			e.m.handshakeFailures.WithLabelValues("node").Inc()
		}
		return nil, err
	}
	return c, nil
}

// finish ends the connection for reason; the first reason wins.
func (p *conn) finish(reason string) {
	p.once.Do(func() {
		p.reason = reason
		p.cancel()
		p.miner.Close()
		p.node.Close()
	})
}

// run records and forwards the login, then both directions until either
// ends.
func (p *conn) run(mr *beam.Reader, login []byte) {
	up := &pump{p: p, dir: beam.MinerToNode, dst: p.node, fwd: &p.toNode, side: "miner"}
	down := &pump{p: p, dir: beam.NodeToMiner, src: beam.NewReader(p.node), dst: p.miner, fwd: &p.toMi, side: "node"}
	up.src = mr
	p.touch()
	if !up.line(login, false) {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); up.run() }()
	go func() { defer wg.Done(); down.run() }()
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() { defer close(watched); p.watchIdle(stop) }()
	wg.Wait()
	close(stop)
	<-watched
}

func (p *conn) touch() { p.active.Store(time.Now().UnixNano()) }

// watchIdle ends the connection once no line has been read from either
// side for the idle timeout, until stop closes.
func (p *conn) watchIdle(stop <-chan struct{}) {
	idle := p.e.cfg.IdleTimeout
	t := time.NewTicker(max(idle/8, 5*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if p.busy.Load() == 0 && time.Since(time.Unix(0, p.active.Load())) > idle {
				p.e.m.idle.Inc()
				p.finish("idle timeout")
				return
			}
		}
	}
}

// pump is one direction: lines read from src, recorded, then written to dst.
type pump struct {
	p    *conn
	dir  beam.Direction
	src  *beam.Reader
	dst  net.Conn
	fwd  *atomic.Uint64
	side string // who sends: "miner" or "node"

	m    event.Message
	red  []byte
	wbuf []byte
}

func (d *pump) run() {
	for {
		line, err := d.src.ReadLine()
		if err != nil {
			var tl *beam.LineTooLongError
			switch {
			case errors.As(err, &tl):
				d.p.e.m.tooLong.WithLabelValues(d.side).Inc()
				d.p.finish("line over " + strconv.Itoa(beam.MaxLineSize) + " bytes from " + d.side)
			case d.p.ctx.Err() != nil:
			default:
				d.p.finish(d.side + " closed")
			}
			return
		}
		// While a line is recorded and written the connection is not
		// idle: the write timeout and the recorder bound that.
		d.p.busy.Add(1)
		d.p.touch()
		ok := d.line(line, d.src.Unterminated())
		d.p.touch()
		d.p.busy.Add(-1)
		if !ok {
			return
		}
	}
}

// line records line, waits until its event is durable, then forwards it
// unchanged (with its LF unless unterminated). It reports whether the
// direction may go on.
func (d *pump) line(line []byte, unterminated bool) bool {
	e := d.p.e
	m := &d.m
	d.red = describe(m, d.dir, line, unterminated, d.red)
	size := m.WireSize
	seq, err := d.p.stream.Append(d.p.ctx, m)
	if err == nil {
		err = d.p.stream.WaitDurable(d.p.ctx, seq)
	}
	if err != nil {
		if d.p.ctx.Err() == nil {
			e.log.Error("beam: record", "stream", d.p.stream.ID(), "err", err)
			d.p.finish("recorder failed")
		}
		return false
	}
	d.wbuf = append(d.wbuf[:0], line...)
	if !unterminated {
		d.wbuf = append(d.wbuf, '\n')
	}
	d.dst.SetWriteDeadline(time.Now().Add(e.cfg.WriteTimeout))
	if _, err := d.dst.Write(d.wbuf); err != nil {
		other := "node"
		if d.side == "node" {
			other = "miner"
		}
		d.p.finish(other + " lost")
		return false
	}
	d.fwd.Store(seq)
	e.m.lines.WithLabelValues(d.side).Inc()
	e.m.bytes.WithLabelValues(d.side).Add(float64(size))
	return true
}

// describe fills m with what is recorded of line (without its LF, which
// it had unless unterminated) sent in direction dir: sizes, metering
// fields, and the payload, redacted into red when redaction changes it. It
// returns red for reuse; m.Payload may alias line or red.
func describe(m *event.Message, dir beam.Direction, line []byte, unterminated bool, red []byte) []byte {
	size := uint64(len(line))
	if !unterminated {
		size++
	}
	m.Reset()
	m.WireSize, m.PayloadSize = size, size
	if dir == beam.MinerToNode {
		m.Direction = event.Direction_CLIENT_TO_UPSTREAM
	} else {
		m.Direction = event.Direction_UPSTREAM_TO_CLIENT
	}
	classify(m, line, dir)
	// The payload is the line as sent, LF included (payload_size counts
	// it), or its redacted form.
	var how beam.Redaction
	red, how = beam.AppendRedacted(red[:0], line)
	if how == beam.RedactNone {
		red = append(red[:0], line...)
		sum := sha256Line(line, unterminated)
		m.PayloadSha256 = sum[:]
	} else {
		sum := sha256Line(red, false)
		m.PayloadSha256 = sum[:]
	}
	if !unterminated {
		red = append(red, '\n')
	}
	m.Payload = red
	return red
}

// classify fills the metering fields of m from line; a line that is not a
// protocol message gets role OTHER and no method.
func classify(m *event.Message, line []byte, dir beam.Direction) {
	c, err := beam.Classify(line, dir)
	if err != nil {
		m.Role = event.Role_OTHER
		return
	}
	m.Method = c.Method.String()
	id, _ := json.Marshal(c.ID) // a decoded string: valid UTF-8, cannot fail
	m.RpcId = string(id)
	switch c.Role {
	case beam.RoleRequest:
		m.Role = event.Role_REQUEST
	case beam.RoleResponse:
		m.Role = event.Role_RESPONSE
	case beam.RoleNotification:
		m.Role = event.Role_NOTIFICATION
	case beam.RoleError:
		m.Role = event.Role_ERROR
	default:
		m.Role = event.Role_OTHER
	}
}
