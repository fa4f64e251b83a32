package sv2

import (
	"context"
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
		c.touch()
		if dir == event.Direction_CLIENT_TO_UPSTREAM && isOpenChannel(h) {
			refused, err := c.openChannel(h, payload)
			if err != nil {
				c.end(err.Error())
				return
			}
			if refused {
				continue
			}
		}
		if err := c.forward(dir, dst, h, payload, true); err != nil {
			c.end(fmt.Sprintf("%s to %s: %v", from, to, err))
			return
		}
	}
}

func isOpenChannel(h sv2.Header) bool {
	return h.Extension() == sv2.ExtCore &&
		(h.MsgType == sv2.MsgOpenStandardMiningChannel || h.MsgType == sv2.MsgOpenExtendedMiningChannel)
}

var errTooManyPending = errors.New("too many frames before a channel opened")

// forward records the frame and, when send is set, writes it to dst: once
// its event is durable when the stream is open; before the first channel
// opens, at once, its event held (bounded) until the stream opens.
func (c *conn) forward(dir event.Direction, dst *side, h sv2.Header, payload []byte, send bool) error {
	m := message(dir, c.down, h, payload)
	frame := appendFrame(make([]byte, 0, sv2.HeaderLen+len(payload)), h, payload)
	c.mu.Lock()
	if c.stream == nil {
		// Before the first channel: forward at once, holding mu so that
		// the held events keep the order the frames crossed in.
		defer c.mu.Unlock()
		if len(c.pending) >= DefaultMaxPendingFrames || c.pendingBytes()+len(payload) > maxPendingBytes {
			return errTooManyPending
		}
		if send {
			if err := dst.write(frame, c.e.cfg.IdleTimeout); err != nil {
				return fmt.Errorf("writing: %w", err)
			}
			c.count(dir, len(frame))
		}
		c.pending = append(c.pending, pendingMsg{m: m, forwarded: send})
		return nil
	}
	stream := c.stream
	seq, err := stream.Append(c.ctx, m)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	if !send {
		return nil
	}
	if err := stream.WaitDurable(c.ctx, seq); err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	if err := dst.write(frame, c.e.cfg.IdleTimeout); err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	c.count(dir, len(frame))
	c.mu.Lock()
	c.markForwarded(dir, seq)
	c.mu.Unlock()
	return nil
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
func (c *conn) markForwarded(dir event.Direction, seq uint64) {
	if dir == event.Direction_CLIENT_TO_UPSTREAM {
		c.fwdUp = max(c.fwdUp, seq)
	} else {
		c.fwdClient = max(c.fwdClient, seq)
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

// openChannel resolves the account a channel open names and opens the
// stream for it if none is open yet. An account that does not resolve is
// refused with OpenMiningChannel.Error unknown-user from the edge.
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
	ctx, cancel := context.WithTimeout(c.ctx, c.e.cfg.HandshakeTimeout)
	defer cancel()
	app, ok, err := c.resolve(ctx, accountOf(userIdentity))
	if err != nil {
		return false, fmt.Errorf("resolving account %q: %w", accountOf(userIdentity), err)
	}
	if !ok {
		c.e.m.refused.Inc()
		c.recordOnly(event.Direction_CLIENT_TO_UPSTREAM, h, payload)
		c.reply(&sv2.OpenMiningChannelError{RequestID: reqID, ErrorCode: ErrCodeUnknownUser})
		return true, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		if err := c.openStream(ctx, app); err != nil {
			return false, err
		}
	}
	return false, nil
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
		return account, true, nil
	}
	return "", false, nil
}

// openStream opens the connection's stream for app and records the held
// events first. Called with mu held.
func (c *conn) openStream(ctx context.Context, app string) error {
	opened := &event.StreamOpened{
		Protocol:         event.Protocol_STRATUM_V2,
		Service:          c.e.cfg.Service,
		Application:      app,
		Supplier:         c.e.cfg.Supplier,
		ClientAddr:       c.down.addr,
		UpstreamAddr:     c.e.cfg.Upstream,
		ClientSecurity:   c.down.sec,
		UpstreamSecurity: event.Security_SECURITY_NONE,
		PayloadCapture:   -1,
	}
	if c.e.cfg.UpstreamNoise != nil {
		opened.UpstreamSecurity = event.Security_NOISE
	}
	stream, err := c.e.cfg.Recorder.Open(ctx, opened)
	if err != nil {
		return fmt.Errorf("opening stream: %w", err)
	}
	c.stream, c.app = stream, app
	for _, p := range c.pending {
		seq, err := stream.Append(ctx, p.m)
		if err != nil {
			return fmt.Errorf("recording: %w", err)
		}
		if p.forwarded {
			c.markForwarded(p.m.Direction, seq)
		}
	}
	c.pending = nil
	return nil
}

// finish records the end of the connection: its stream (opened now, with
// no application, if no channel ever opened) closes with the reason and
// what crossed.
func (c *conn) finish() {
	c.end("closed")
	reason := c.endReason()
	c.e.log.Debug("sv2 edge: connection closed", "client", c.down.addr, "reason", reason)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		if err := c.openStream(ctx, ""); err != nil {
			c.e.log.Error("sv2 edge: recording a connection", "client", c.down.addr, "err", err)
			return
		}
	}
	closed := &event.StreamClosed{Reason: reason,
		ForwardedToUpstreamThroughSeq: new(c.fwdUp), ForwardedToClientThroughSeq: new(c.fwdClient)}
	if err := c.stream.Close(ctx, closed); err != nil {
		c.e.log.Error("sv2 edge: close stream", "stream", c.stream.ID(), "err", err)
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
			if time.Since(time.Unix(0, c.active.Load())) > idle {
				c.e.m.idle.Inc()
				c.end("idle timeout")
				return
			}
		}
	}
}

// metrics are the edge's Prometheus metrics.
type metrics struct {
	conns, dialErrors, refused, idle prometheus.Counter
	handshakeFailures                *prometheus.CounterVec
	frames, bytes                    *prometheus.CounterVec
}

func (m *metrics) register(reg prometheus.Registerer) error {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "relaymeter", Subsystem: "sv2_edge", Name: name, Help: help}
	}
	m.conns = prometheus.NewCounter(opts("connections_total", "Miner connections accepted."))
	m.dialErrors = prometheus.NewCounter(opts("upstream_dial_errors_total", "Failed connections to the pool."))
	m.refused = prometheus.NewCounter(opts("channels_refused_total", "Channel opens refused with unknown-user."))
	m.idle = prometheus.NewCounter(opts("idle_closes_total", "Connections closed for inactivity."))
	m.handshakeFailures = prometheus.NewCounterVec(opts("noise_handshake_failures_total", "Failed Noise handshakes, by side."), []string{"side"})
	m.frames = prometheus.NewCounterVec(opts("frames_total", "Frames forwarded, by direction."), []string{"direction"})
	m.bytes = prometheus.NewCounterVec(opts("bytes_total", "Plaintext frame bytes forwarded, by direction."), []string{"direction"})
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.conns, m.dialErrors, m.refused, m.idle, m.handshakeFailures, m.frames, m.bytes} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("sv2 edge: registering metrics: %w", err)
		}
	}
	return nil
}
