package sv2

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/stratum/sv2"
)

// maxPendingBytes bounds the payload bytes a connection may exchange
// before its first channel opens.
const maxPendingBytes = 64 << 10

// pendingMsg is a frame's event held until the connection's stream opens.
type pendingMsg struct {
	m         *event.Message
	forwarded bool
}

// pump reads frames from src and forwards each to dst once recorded,
// until either side fails; then it ends the connection.
func (c *conn) pump(dir event.Direction, src, dst *side, from, to string) {
	for {
		h, payload, err := src.r.Next()
		if err != nil {
			c.end(readReason(from, err))
			return
		}
		// While a frame is recorded and written the connection is not idle:
		// the write's deadline and the recorder bound that.
		c.busy.Add(1)
		c.touch()
		more := c.handleFrame(dir, dst, from, to, h, payload)
		c.touch()
		c.busy.Add(-1)
		if !more {
			return
		}
	}
}

// handleFrame records and forwards one frame read from src; it reports
// whether the pump goes on.
func (c *conn) handleFrame(dir event.Direction, dst *side, from, to string, h sv2.Header, payload []byte) bool {
	toClient := dir == event.Direction_UPSTREAM_TO_CLIENT
	if c.draining.Load() {
		// The miner was sent elsewhere: what it still says is recorded,
		// not forwarded.
		c.recordOnly(dir, h, payload)
		return true
	}
	if toClient && isReconnect(h) && c.e.cfg.Reconnect == ReconnectRewrite {
		c.reconnect(h, payload)
		return false
	}
	if !toClient && !c.passthrough && isOpenChannel(h) {
		refused, err := c.openChannel(h, payload)
		if err != nil {
			c.end(err.Error())
			return false
		}
		if refused {
			return true
		}
	}
	if err := c.forward(dir, dst, h, payload, true); err != nil {
		if c.draining.Load() {
			return true // the pool's side closed under it: recorded, not crossed
		}
		c.end(fmt.Sprintf("%s to %s: %v", from, to, err))
		return false
	}
	if toClient && isReconnect(h) {
		c.e.m.reconnects.WithLabelValues("passed").Inc()
	}
	return true
}

func isOpenChannel(h sv2.Header) bool {
	return h.Extension() == sv2.ExtCore && !h.ChannelMsg() &&
		(h.MsgType == sv2.MsgOpenStandardMiningChannel || h.MsgType == sv2.MsgOpenExtendedMiningChannel)
}

func isReconnect(h sv2.Header) bool {
	return h.Extension() == sv2.ExtCore && !h.ChannelMsg() && h.MsgType == sv2.MsgReconnect
}

var errTooManyPending = errors.New("too many frames before a channel opened")

// forward records the frame and, when send is set, writes it to dst: once
// its event is durable when the connection has a stream; before the first
// channel opens, at once, its event held (bounded) until the stream opens.
func (c *conn) forward(dir event.Direction, dst *side, h sv2.Header, payload []byte, send bool) error {
	m := message(dir, c.down, h, payload)
	frame := appendFrame(make([]byte, 0, sv2.HeaderLen+len(payload)), h, payload)
	c.mu.Lock()
	if len(c.streams) == 0 {
		// Before the first channel: forward at once, holding mu so that
		// the held events keep the order the frames crossed in.
		defer c.mu.Unlock()
		if len(c.pending) >= DefaultMaxPendingFrames || c.pendingBytes()+len(payload) > maxPendingBytes {
			return errTooManyPending
		}
		if send {
			if err := c.write(dst, frame); err != nil {
				return fmt.Errorf("writing: %w", err)
			}
			c.count(dir, len(frame))
		}
		c.pending = append(c.pending, pendingMsg{m: m, forwarded: send})
		return nil
	}
	a := c.route(h, payload, m)
	seq, err := a.stream.Append(c.ctx, m)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	if !send {
		return nil
	}
	if err := a.stream.WaitDurable(c.ctx, seq); err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	if err := c.write(dst, frame); err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	c.count(dir, len(frame))
	c.mu.Lock()
	a.markForwarded(dir, seq)
	c.mu.Unlock()
	return nil
}

// route returns the stream a frame belongs to: a channel open's request and
// answer go to the stream the open's account was given (and a successful
// answer ties its channel_id to it); a frame with a channel_id of a known
// channel to that channel's stream; every other frame (connection-level
// messages, group channels, channels the edge did not see open) to the
// first stream. Called with mu held, streams not empty.
func (c *conn) route(h sv2.Header, payload []byte, m *event.Message) *acctStream {
	if h.Extension() == sv2.ExtCore && !h.ChannelMsg() && m.RequestId != nil {
		id := *m.RequestId
		switch h.MsgType {
		case sv2.MsgOpenStandardMiningChannel, sv2.MsgOpenExtendedMiningChannel:
			if a := c.reqs[id]; a != nil {
				return a
			}
		case sv2.MsgOpenStandardMiningChannelSuccess, sv2.MsgOpenExtendedMiningChannelSuccess, sv2.MsgOpenMiningChannelError:
			if a := c.reqs[id]; a != nil {
				delete(c.reqs, id)
				// Both successes start with request_id then channel_id.
				if h.MsgType != sv2.MsgOpenMiningChannelError && len(payload) >= 8 {
					ch := binary.LittleEndian.Uint32(payload[4:8])
					c.chans[ch] = a
					delete(c.closedChans, ch)
				}
				return a
			}
		}
	}
	if m.ChannelId != nil {
		if a := c.chans[*m.ChannelId]; a != nil {
			// A closed channel keeps its account, for the late answers to
			// its submits, until its entry is needed (see openChannel).
			if h.Extension() == sv2.ExtCore && h.MsgType == sv2.MsgCloseChannel {
				c.closedChans[*m.ChannelId] = struct{}{}
			}
			return a
		}
	}
	return c.streams[0]
}

// write writes frame to dst within the idle timeout.
func (c *conn) write(dst *side, frame []byte) error {
	return dst.write(frame, c.e.cfg.IdleTimeout)
}

// pendingBytes is the payload size of the held events. Called with mu held.
func (c *conn) pendingBytes() int {
	n := 0
	for _, p := range c.pending {
		n += int(p.m.PayloadSize)
	}
	return n
}

// markForwarded notes that seq of dir crossed. Called with mu held.
func (a *acctStream) markForwarded(dir event.Direction, seq uint64) {
	if dir == event.Direction_CLIENT_TO_UPSTREAM {
		a.fwdUp = max(a.fwdUp, seq)
	} else {
		a.fwdClient = max(a.fwdClient, seq)
	}
}

func (c *conn) count(dir event.Direction, n int) {
	c.e.m.frames.WithLabelValues(dir.String()).Inc()
	c.e.m.bytes.WithLabelValues(dir.String()).Add(float64(n))
}

// recordOnly records a frame the edge does not forward.
func (c *conn) recordOnly(dir event.Direction, h sv2.Header, payload []byte) {
	if err := c.forward(dir, nil, h, payload, false); err != nil {
		c.e.log.Warn("sv2 edge: recording a frame not forwarded", "client", c.down.addr, "err", err)
	}
}

// reply sends m to the miner from the edge itself, recorded like a frame
// from the pool.
func (c *conn) reply(m sv2.Message) {
	frame, err := sv2.AppendMessage(nil, m)
	if err != nil {
		c.e.log.Error("sv2 edge: encoding a reply", "err", err)
		return
	}
	h, payload, _, _ := sv2.SplitFrame(frame, sv2.MaxU24)
	if err := c.forward(event.Direction_UPSTREAM_TO_CLIENT, c.down, h, payload, true); err != nil {
		c.e.log.Info("sv2 edge: replying to client", "client", c.down.addr, "err", err)
	}
}

// openChannel resolves the account a channel open names and gives the
// open the stream of that account, opened if the connection has none for
// it yet. An account that does not resolve is refused with
// OpenMiningChannel.Error unknown-user from the edge, one beyond the
// connection's bounds with too-many-channels.
func (c *conn) openChannel(h sv2.Header, payload []byte) (refused bool, err error) {
	var reqID uint32
	var userIdentity string
	if h.MsgType == sv2.MsgOpenStandardMiningChannel {
		var m sv2.OpenStandardMiningChannel
		if m.Decode(payload) != nil {
			return false, nil // the pool answers a malformed request
		}
		reqID, userIdentity = m.RequestID, m.UserIdentity
	} else {
		var m sv2.OpenExtendedMiningChannel
		if m.Decode(payload) != nil {
			return false, nil
		}
		reqID, userIdentity = m.RequestID, m.UserIdentity
	}
	refuse := func(code string) (bool, error) {
		c.e.m.refused.WithLabelValues(code).Inc()
		c.recordOnly(event.Direction_CLIENT_TO_UPSTREAM, h, payload)
		c.reply(&sv2.OpenMiningChannelError{RequestID: reqID, ErrorCode: code})
		return true, nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.e.cfg.HandshakeTimeout)
	defer cancel()
	app, ok, err := c.resolve(ctx, accountOf(userIdentity))
	if err != nil {
		return false, fmt.Errorf("resolving account %q: %w", accountOf(userIdentity), err)
	}
	if !ok {
		return refuse(ErrCodeUnknownUser)
	}
	c.mu.Lock()
	if len(c.chans)+len(c.reqs) >= MaxChannelsPerConn {
		for ch := range c.closedChans {
			delete(c.chans, ch)
		}
		clear(c.closedChans)
	}
	if len(c.chans)+len(c.reqs) >= MaxChannelsPerConn ||
		(c.byApp[app] == nil && len(c.streams) >= MaxAccountsPerConn) {
		c.mu.Unlock()
		return refuse(ErrCodeTooManyChannels)
	}
	a, err := c.streamFor(ctx, app)
	if err == nil {
		c.reqs[reqID] = a
	}
	c.mu.Unlock()
	return false, err
}

// resolve returns the application billed for account.
func (c *conn) resolve(ctx context.Context, account string) (string, bool, error) {
	if account == "" {
		return "", false, nil
	}
	if c.e.cfg.Accounts != nil {
		app, ok, err := c.e.cfg.Accounts.Application(ctx, account)
		if err != nil || ok {
			return app, ok, err
		}
	}
	if c.e.cfg.OpenAccess {
		app, _ := event.CleanText(account, event.MaxIDLen)
		return app, true, nil
	}
	return "", false, nil
}

// streamFor returns the connection's stream for app, opening it if there
// is none: the first stream records the held events first; a later one
// names the first as its parent. Called with mu held.
func (c *conn) streamFor(ctx context.Context, app string) (*acctStream, error) {
	if a := c.byApp[app]; a != nil {
		return a, nil
	}
	upAddr := c.upAddr
	if upAddr == "" {
		upAddr = c.e.upstreamFor(c.protocol)
	}
	opened := &event.StreamOpened{
		Protocol:         event.Protocol_STRATUM_V2,
		Service:          c.e.cfg.Service,
		Application:      app,
		Supplier:         c.e.cfg.Supplier,
		ClientAddr:       c.down.addr,
		UpstreamAddr:     upAddr,
		ClientSecurity:   c.down.sec,
		UpstreamSecurity: event.Security_SECURITY_NONE,
		PayloadCapture:   -1,
	}
	if c.e.cfg.UpstreamNoise != nil {
		opened.UpstreamSecurity = event.Security_NOISE
	}
	if len(c.streams) > 0 {
		id := c.streams[0].stream.ID()
		opened.ParentStreamId = id[:]
	}
	stream, err := c.e.cfg.Recorder.Open(ctx, opened)
	if err != nil {
		return nil, fmt.Errorf("opening stream: %w", err)
	}
	a := &acctStream{app: app, stream: stream}
	if c.byApp == nil {
		c.byApp, c.chans, c.reqs = map[string]*acctStream{}, map[uint32]*acctStream{}, map[uint32]*acctStream{}
		c.closedChans = map[uint32]struct{}{}
	}
	c.byApp[app] = a
	c.streams = append(c.streams, a)
	if len(c.streams) > 1 {
		return a, nil
	}
	for _, p := range c.pending {
		seq, err := stream.Append(ctx, p.m)
		if err != nil {
			return nil, fmt.Errorf("recording: %w", err)
		}
		if p.forwarded {
			a.markForwarded(p.m.Direction, seq)
		}
	}
	c.pending = nil
	return a, nil
}

// finish records the end of the connection: each of its streams (one,
// with no application or the passthrough one, if no channel ever opened)
// closes with the reason and what of it crossed.
func (c *conn) finish() {
	c.end("closed")
	reason := c.endReason()
	c.e.log.Debug("sv2 edge: connection closed", "client", c.down.addr, "reason", reason)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.streams) == 0 {
		app := ""
		if c.passthrough {
			app = c.e.cfg.PassthroughApplication
		}
		if _, err := c.streamFor(ctx, app); err != nil {
			c.e.log.Error("sv2 edge: recording a connection", "client", c.down.addr, "err", err)
			return
		}
	}
	for _, a := range c.streams {
		closed := &event.StreamClosed{Reason: reason,
			ForwardedToUpstreamThroughSeq: new(a.fwdUp), ForwardedToClientThroughSeq: new(a.fwdClient)}
		if err := a.stream.Close(ctx, closed); err != nil {
			c.e.log.Error("sv2 edge: close stream", "stream", a.stream.ID(), "err", err)
		}
	}
}

// watchIdle ends the connection once no frame has been read from either
// side for the idle timeout, until stop closes.
func (c *conn) watchIdle(stop <-chan struct{}) {
	idle := c.e.cfg.IdleTimeout
	t := time.NewTicker(max(idle/8, 5*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if c.busy.Load() == 0 && time.Since(time.Unix(0, c.active.Load())) > idle {
				c.e.m.idle.Inc()
				c.end("idle timeout")
				return
			}
		}
	}
}

// metrics are the edge's Prometheus metrics.
type metrics struct {
	conns, dialErrors, idle, redirectedDials prometheus.Counter
	handshakeFailures, refused, reconnects   *prometheus.CounterVec
	frames, bytes                            *prometheus.CounterVec
}

func (m *metrics) register(reg prometheus.Registerer) error {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "sv2_edge", Name: name, Help: help}
	}
	m.conns = prometheus.NewCounter(opts("connections_total", "Miner connections accepted."))
	m.dialErrors = prometheus.NewCounter(opts("upstream_dial_errors_total", "Failed connections to the pool."))
	m.refused = prometheus.NewCounterVec(opts("channels_refused_total", "Channel opens the edge refused, by error code."), []string{"code"})
	m.reconnects = prometheus.NewCounterVec(opts("reconnects_total", "Reconnects from pools, by what the edge did: rewritten or passed."), []string{"action"})
	m.redirectedDials = prometheus.NewCounter(opts("redirected_dials_total", "Connections dialled where a pool's Reconnect asked."))
	m.idle = prometheus.NewCounter(opts("idle_closes_total", "Connections closed for inactivity."))
	m.handshakeFailures = prometheus.NewCounterVec(opts("noise_handshake_failures_total", "Failed Noise handshakes, by side."), []string{"side"})
	m.frames = prometheus.NewCounterVec(opts("frames_total", "Frames forwarded, by direction."), []string{"direction"})
	m.bytes = prometheus.NewCounterVec(opts("bytes_total", "Plaintext frame bytes forwarded, by direction."), []string{"direction"})
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.conns, m.dialErrors, m.refused, m.idle, m.handshakeFailures, m.frames, m.bytes, m.reconnects, m.redirectedDials} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("sv2 edge: registering metrics: %w", err)
		}
	}
	return nil
}
