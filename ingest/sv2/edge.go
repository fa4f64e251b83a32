// Package sv2 is the Stratum V2 edge: a TCP frame proxy between miners and
// one pool that records every frame in both directions through the
// recorder, as plaintext Sv2 frames classified by sv2.Classify, and
// forwards each one unchanged once its event is durable.
//
// Each miner connection gets its own upstream connection, so request ids
// and channel ids stay valid without remapping. Either side may be Noise
// (the edge is the responder toward miners and the initiator toward the
// pool) or plaintext.
//
// Attribution: a Mining connection has one stream per distinct account
// (user_identity up to its first '.') among its channels. The first stream
// is opened when the miner's first OpenStandardMiningChannel or
// OpenExtendedMiningChannel names an account that resolves; the frames
// before it (SetupConnection and its answer) are kept, bounded, and recorded
// first in that stream, so they belong to the first channel's account. They
// are forwarded before they are recorded; every frame from the first
// channel open on is recorded before it is forwarded. A later channel whose
// account differs opens that account's stream (StreamOpened.parent_stream_id
// names the first one); the frames of a channel (by channel_id, and its open
// request and answer by request_id) go to its account's stream, every
// other frame to the first stream. A connection that ends before any
// channel opens is recorded in one stream with no application.
//
// Job Declaration and Template Distribution connections are passed
// through frame by frame to their upstream, recorded in one stream billed
// to Config.PassthroughApplication. A pool's Reconnect is rewritten (see
// ReconnectRewrite) unless Config.Reconnect is ReconnectPass.
package sv2

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/stratum/sv2"
	"github.com/relaymeter/relaymeter/stratum/sv2/noise"
)

// Recorder opens the stream of one miner connection; *record.Recorder
// satisfies it.
type Recorder interface {
	Open(ctx context.Context, opened *event.StreamOpened) (*record.Stream, error)
}

// Accounts resolves the account part of a user_identity to the
// application billed for it.
type Accounts interface {
	// Application returns the id of the application named account, ok
	// false when there is none.
	Application(ctx context.Context, account string) (id string, ok bool, err error)
}

// Error codes the edge answers with itself.
const (
	ErrCodeUnsupportedProtocol = "unsupported-protocol"
	ErrCodeUnknownUser         = "unknown-user"
	// ErrCodeTooManyChannels refuses a channel open beyond the edge's
	// per-connection bounds (MaxAccountsPerConn accounts, MaxChannelsPerConn
	// channels open or being opened).
	ErrCodeTooManyChannels = "too-many-channels"
)

// SetupConnection protocols.
const (
	ProtocolMining               uint8 = 0
	ProtocolJobDeclaration       uint8 = 1
	ProtocolTemplateDistribution uint8 = 2
)

// ReconnectMode is how the edge handles a pool's Reconnect.
type ReconnectMode string

const (
	// ReconnectRewrite (the default) keeps miners behind the meter: the
	// edge notes the address the pool asked for (an empty new_host is the
	// host of the pool the edge dialled, a new_port 0 its port), sends the
	// miner a Reconnect to the edge itself (Config.Advertise), closes the
	// miner's connection, and dials the address the pool asked for for
	// that miner's connections during Config.ReconnectTTL.
	ReconnectRewrite ReconnectMode = "rewrite"
	// ReconnectPass forwards Reconnect unchanged: the miner leaves the
	// edge.
	ReconnectPass ReconnectMode = "pass"
)

// Bounds of one connection's attribution state.
const (
	MaxAccountsPerConn = 64
	MaxChannelsPerConn = 4096
)

// Defaults of Config.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 10 * time.Minute
	// DefaultMaxPendingFrames bounds the frames a connection may exchange
	// before its first channel opens.
	DefaultMaxPendingFrames = 16
	DefaultReconnectTTL     = 10 * time.Minute
	DefaultMaxRedirects     = 1 << 16
)

// Config configures an Edge.
type Config struct {
	Recorder Recorder
	// Upstream is the pool's host:port.
	Upstream string
	Service  string
	Supplier string
	// Accounts resolves accounts; nil requires OpenAccess.
	Accounts Accounts
	// OpenAccess bills an account Accounts does not know (or every
	// account, without Accounts) to an application of the same name.
	OpenAccess bool

	// Downstream returns the edge's Noise responder configuration toward
	// miners (StaticKey and Certificate) for each new connection, so that
	// a renewed certificate serves new connections; nil means plaintext.
	Downstream func() *noise.Config
	// UpstreamNoise is the Noise initiator configuration toward the pool
	// (AuthorityKey); nil means plaintext.
	UpstreamNoise *noise.Config

	// MaxPayload is the largest frame payload accepted from either side;
	// 0 means sv2.DefaultMaxPayload.
	MaxPayload int
	// HandshakeTimeout bounds the Noise handshake plus the miner's
	// SetupConnection; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection with no frame in either direction
	// for this long; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// DialTimeout bounds connecting to the pool (Noise handshake
	// included); 0 means HandshakeTimeout.
	DialTimeout time.Duration

	// Reconnect is how a pool's Reconnect is handled; "" means
	// ReconnectRewrite.
	Reconnect ReconnectMode
	// Advertise is the host:port a rewritten Reconnect sends miners to;
	// "" sends new_host "" and new_port 0, which the specification defines
	// as the host and port the miner is connected to: the edge, as the
	// miner reached it.
	Advertise string
	// ReconnectTTL is how long a pool's Reconnect redirects a miner's
	// connections; 0 means DefaultReconnectTTL.
	ReconnectTTL time.Duration
	// MaxRedirects bounds the redirect table; 0 means
	// DefaultMaxRedirects. When full, expired entries go first, then the
	// one closest to expiry.
	MaxRedirects int

	// JobDeclarationUpstream and TemplateDistributionUpstream are where
	// connections of those protocols are passed through to; "" means
	// Upstream. They are dialled like the pool (UpstreamNoise).
	JobDeclarationUpstream       string
	TemplateDistributionUpstream string
	// PassthroughApplication is billed for Job Declaration and Template
	// Distribution connections, which name no user_identity; "" records
	// them in streams with no application.
	PassthroughApplication string

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Edge proxies miner connections to the pool.
type Edge struct {
	cfg Config
	log *slog.Logger
	m   metrics

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[*conn]struct{}
	closed    bool
	redirects *redirects
	// advHost and advPort are what a rewritten Reconnect carries.
	advHost string
	advPort uint16
}

// New checks cfg and returns an Edge.
func New(cfg Config) (*Edge, error) {
	switch {
	case cfg.Recorder == nil:
		return nil, errors.New("sv2 edge: Recorder is required")
	case cfg.Upstream == "":
		return nil, errors.New("sv2 edge: Upstream is required")
	case cfg.Accounts == nil && !cfg.OpenAccess:
		return nil, errors.New("sv2 edge: Accounts is required unless OpenAccess")
	case cfg.MaxPayload < 0 || cfg.MaxPayload > sv2.MaxU24:
		return nil, fmt.Errorf("sv2 edge: MaxPayload %d outside [0, %d]", cfg.MaxPayload, sv2.MaxU24)
	}
	if cfg.Downstream != nil {
		d := cfg.Downstream()
		if d == nil {
			return nil, errors.New("sv2 edge: downstream noise: no configuration")
		}
		if _, err := noise.Server(nil, *d); err != nil {
			return nil, fmt.Errorf("sv2 edge: downstream noise: %w", err)
		}
	}
	if cfg.UpstreamNoise != nil {
		if _, err := noise.Client(nil, *cfg.UpstreamNoise); err != nil {
			return nil, fmt.Errorf("sv2 edge: upstream noise: %w", err)
		}
	}
	if cfg.Service == "" {
		cfg.Service = "sv2"
	}
	switch cfg.Reconnect {
	case "":
		cfg.Reconnect = ReconnectRewrite
	case ReconnectRewrite, ReconnectPass:
	default:
		return nil, fmt.Errorf("sv2 edge: Reconnect %q: want %q or %q", cfg.Reconnect, ReconnectRewrite, ReconnectPass)
	}
	var advHost string
	var advPort uint16
	if cfg.Advertise != "" {
		h, p, err := net.SplitHostPort(cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("sv2 edge: Advertise %q: %w", cfg.Advertise, err)
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 || h == "" || len(h) > 255 {
			return nil, fmt.Errorf("sv2 edge: Advertise %q: want a host and a port in 1-65535", cfg.Advertise)
		}
		advHost, advPort = h, uint16(n)
	}
	if cfg.ReconnectTTL <= 0 {
		cfg.ReconnectTTL = DefaultReconnectTTL
	}
	if cfg.MaxRedirects <= 0 {
		cfg.MaxRedirects = DefaultMaxRedirects
	}
	if cfg.JobDeclarationUpstream == "" {
		cfg.JobDeclarationUpstream = cfg.Upstream
	}
	if cfg.TemplateDistributionUpstream == "" {
		cfg.TemplateDistributionUpstream = cfg.Upstream
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = sv2.DefaultMaxPayload
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = cfg.HandshakeTimeout
	}
	// The Noise layers reject an oversized frame before allocating it.
	if cfg.UpstreamNoise != nil {
		u := *cfg.UpstreamNoise
		u.MaxPayload = cfg.MaxPayload
		cfg.UpstreamNoise = &u
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Edge{cfg: cfg, log: cfg.Logger, conns: map[*conn]struct{}{}, advHost: advHost, advPort: advPort,
		redirects: newRedirects(cfg.ReconnectTTL, cfg.MaxRedirects, time.Now)}
	if err := e.m.register(cfg.Registerer); err != nil {
		return nil, err
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Serve accepts miner connections on ln until ln fails or the edge is
// closed.
func (e *Edge) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			e.mu.Lock()
			closed := e.closed
			e.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("sv2 edge: accept: %w", err)
		}
		e.Handle(c)
	}
}

// Handle proxies one miner connection in the background; the edge owns c.
func (e *Edge) Handle(c net.Conn) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		_ = c.Close()
		return
	}
	cn := &conn{e: e, raw: c}
	cn.ctx, cn.cancel = context.WithCancel(e.ctx)
	e.conns[cn] = struct{}{}
	e.wg.Add(1)
	e.mu.Unlock()
	e.m.conns.Inc()
	go func() {
		defer e.wg.Done()
		cn.run()
		e.mu.Lock()
		delete(e.conns, cn)
		e.mu.Unlock()
	}()
}

// Close stops accepting connections, ends those open (their streams close
// with reason "edge shutting down") and waits for them until ctx ends.
func (e *Edge) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	for c := range e.conns {
		c.end("edge shutting down")
	}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		e.cancel()
		return nil
	case <-ctx.Done():
		e.cancel()
		return fmt.Errorf("sv2 edge: close: %w", ctx.Err())
	}
}

// side is one peer of a proxied connection.
type side struct {
	raw  net.Conn
	rw   io.ReadWriter // the Noise session, or raw
	r    *sv2.Reader
	wmu  sync.Mutex
	sec  event.Security
	addr string
}

func (s *side) wireSize(payload int) uint64 {
	if s.sec == event.Security_NOISE {
		return uint64(noise.WireSize(payload))
	}
	return uint64(sv2.HeaderLen + payload)
}

func (s *side) write(frame []byte, timeout time.Duration) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.raw.SetWriteDeadline(time.Now().Add(timeout))
	_, err := s.rw.Write(frame)
	return err
}

// conn is one proxied miner connection.
type conn struct {
	e        *Edge
	raw      net.Conn
	down, up *side
	// ctx ends with the connection, releasing waits for the recorder.
	ctx    context.Context
	cancel context.CancelFunc

	closeMu sync.Mutex // reason, ended, upRaw
	reason  atomic.Pointer[string]
	ended   bool
	upRaw   net.Conn
	active  atomic.Int64 // unix nanoseconds of the last frame read
	busy    atomic.Int32 // frames being recorded and forwarded
	// draining is set once a rewritten Reconnect went to the miner: what
	// the miner still sends is recorded, not forwarded.
	draining atomic.Bool

	// Set by run before the pumps start.
	protocol    uint8
	passthrough bool   // Job Declaration or Template Distribution
	key         string // the redirect key: protocol, client IP, device_id
	upAddr      string // the upstream dialled (or to dial)

	mu      sync.Mutex // recording: streams, routes, pending
	streams []*acctStream
	byApp   map[string]*acctStream
	chans   map[uint32]*acctStream // channel_id → its account's stream
	// closedChans are the channels of chans a CloseChannel closed.
	closedChans map[uint32]struct{}
	reqs        map[uint32]*acctStream // open request_id → its account's stream
	pending     []pendingMsg
}

// acctStream is the stream of one account of a connection.
type acctStream struct {
	app       string
	stream    *record.Stream
	fwdUp     uint64
	fwdClient uint64
}

// end records the first reason the connection ends for and closes both
// sides, which unblocks every read and write.
func (c *conn) end(reason string) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.reason.Load() == nil {
		c.reason.Store(&reason)
	}
	if c.ended {
		return
	}
	c.ended = true
	c.cancel()
	_ = c.raw.Close()
	if c.upRaw != nil {
		_ = c.upRaw.Close()
	}
}

func (c *conn) endReason() string {
	if r := c.reason.Load(); r != nil {
		return *r
	}
	return "closed"
}

func (c *conn) run() {
	e := c.e
	defer c.finish()
	c.down = &side{raw: c.raw, rw: c.raw, sec: event.Security_SECURITY_NONE, addr: c.raw.RemoteAddr().String()}
	_ = c.raw.SetDeadline(time.Now().Add(e.cfg.HandshakeTimeout))
	if e.cfg.Downstream != nil {
		dp := e.cfg.Downstream()
		if dp == nil {
			c.end("downstream noise: no configuration")
			return
		}
		d := *dp
		d.MaxPayload = e.cfg.MaxPayload
		nc, err := noise.Server(c.raw, d)
		if err != nil {
			c.end("downstream noise: " + err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(c.ctx, e.cfg.HandshakeTimeout)
		err = nc.Handshake(ctx)
		cancel()
		if err != nil {
			e.m.handshakeFailures.WithLabelValues("downstream").Inc()
			e.log.Info("sv2 edge: miner noise handshake failed", "client", c.down.addr, "err", err)
			c.end("noise handshake with client failed: " + err.Error())
			return
		}
		c.down.rw, c.down.sec = nc, event.Security_NOISE
	}
	c.down.r = sv2.NewReader(c.down.rw, e.cfg.MaxPayload)
	h, payload, err := c.down.r.Next()
	if err != nil {
		c.end(readReason("client", err))
		return
	}
	c.touch()
	if h.Kind() != (sv2.Kind{Ext: sv2.ExtCore, Type: sv2.MsgSetupConnection}) {
		c.recordOnly(event.Direction_CLIENT_TO_UPSTREAM, h, payload)
		c.end("first frame is not SetupConnection")
		return
	}
	var setup sv2.SetupConnection
	if err := setup.Decode(payload); err != nil {
		c.recordOnly(event.Direction_CLIENT_TO_UPSTREAM, h, payload)
		c.end("malformed SetupConnection: " + err.Error())
		return
	}
	c.protocol = setup.Protocol
	switch setup.Protocol {
	case ProtocolMining:
	case ProtocolJobDeclaration, ProtocolTemplateDistribution:
		c.passthrough = true
	default:
		// A protocol the edge does not know: it answers itself, as a pool
		// would.
		c.recordOnly(event.Direction_CLIENT_TO_UPSTREAM, h, payload)
		c.reply(&sv2.SetupConnectionError{ErrorCode: ErrCodeUnsupportedProtocol})
		c.end(fmt.Sprintf("unsupported protocol %d", setup.Protocol))
		return
	}
	c.key = redirectKey(setup.Protocol, c.raw.RemoteAddr(), setup.DeviceID)
	if err := c.dial(); err != nil {
		c.end(err.Error())
		return
	}
	_ = c.raw.SetDeadline(time.Time{})
	c.touch()
	if c.passthrough {
		// No channel names an account: the stream opens now, billed to the
		// passthrough application, and every frame is recorded before it
		// crosses.
		ctx, cancel := context.WithTimeout(c.ctx, e.cfg.HandshakeTimeout)
		c.mu.Lock()
		_, err := c.streamFor(ctx, e.cfg.PassthroughApplication)
		c.mu.Unlock()
		cancel()
		if err != nil {
			c.end(err.Error())
			return
		}
	}
	if err := c.forward(event.Direction_CLIENT_TO_UPSTREAM, c.up, h, payload, true); err != nil {
		c.end(err.Error())
		return
	}
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() {
		defer pumps.Done()
		c.pump(event.Direction_CLIENT_TO_UPSTREAM, c.down, c.up, "client", "upstream")
	}()
	go func() {
		defer pumps.Done()
		c.pump(event.Direction_UPSTREAM_TO_CLIENT, c.up, c.down, "upstream", "client")
	}()
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() { defer close(watched); c.watchIdle(stop) }()
	// Either pump ending ends the connection, which ends the other.
	pumps.Wait()
	close(stop)
	<-watched
}

// upstreamFor is the configured upstream of a SetupConnection protocol.
func (e *Edge) upstreamFor(protocol uint8) string {
	switch protocol {
	case ProtocolJobDeclaration:
		return e.cfg.JobDeclarationUpstream
	case ProtocolTemplateDistribution:
		return e.cfg.TemplateDistributionUpstream
	}
	return e.cfg.Upstream
}

// dial connects to the upstream of the connection's protocol, or to where
// a pool's Reconnect redirected this miner; a redirect that cannot be
// dialled is dropped and the configured upstream dialled instead.
func (c *conn) dial() error {
	e := c.e
	def := e.upstreamFor(c.protocol)
	target, redirected := e.redirects.get(c.key)
	if !redirected {
		target = def
	}
	c.upAddr = target
	err := c.dialAddr(target)
	if err == nil || !redirected || c.ctx.Err() != nil {
		if err == nil && redirected {
			e.m.redirectedDials.Inc()
			e.log.Info("sv2 edge: dialled where the pool's Reconnect asked", "client", c.down.addr, "upstream", target)
		}
		return err
	}
	e.log.Warn("sv2 edge: the address a pool's Reconnect asked for failed; dialling the configured upstream",
		"client", c.down.addr, "redirect", target, "upstream", def, "err", err)
	e.redirects.drop(c.key)
	c.upAddr = def
	return c.dialAddr(def)
}

// dialAddr connects to addr, with Noise when configured.
func (c *conn) dialAddr(addr string) error {
	e := c.e
	ctx, cancel := context.WithTimeout(c.ctx, e.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		e.m.dialErrors.Inc()
		return fmt.Errorf("dialing upstream: %w", err)
	}
	c.closeMu.Lock()
	c.upRaw = raw
	ended := c.ended
	c.closeMu.Unlock()
	if ended {
		_ = raw.Close()
		return errors.New(c.endReason())
	}
	up := &side{raw: raw, rw: raw, sec: event.Security_SECURITY_NONE, addr: addr}
	if e.cfg.UpstreamNoise != nil {
		nc, _ := noise.Client(raw, *e.cfg.UpstreamNoise)
		if err := nc.Handshake(ctx); err != nil {
			e.m.handshakeFailures.WithLabelValues("upstream").Inc()
			var ce *noise.CertificateError
			if errors.As(err, &ce) {
				e.log.Error("sv2 edge: REFUSING pool: its certificate does not verify against --upstream-authority-pubkey",
					"upstream", addr, "err", err)
			} else {
				e.log.Warn("sv2 edge: pool noise handshake failed", "upstream", addr, "err", err)
			}
			_ = raw.Close()
			return fmt.Errorf("noise handshake with upstream failed: %w", err)
		}
		up.rw, up.sec = nc, event.Security_NOISE
	}
	up.r = sv2.NewReader(up.rw, e.cfg.MaxPayload)
	c.mu.Lock()
	c.up = up
	c.mu.Unlock()
	return nil
}

func readReason(who string, err error) string {
	var tooLarge *sv2.FrameTooLargeError
	var nTooLarge *noise.FrameTooLargeError
	switch {
	case errors.Is(err, io.EOF):
		return who + " closed"
	case errors.As(err, &tooLarge), errors.As(err, &nTooLarge):
		return fmt.Sprintf("%s frame over the size limit: %v", who, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return who + " sent a truncated frame"
	case isTimeout(err):
		return who + " timed out"
	}
	return fmt.Sprintf("reading from %s: %v", who, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) touch() { c.active.Store(time.Now().UnixNano()) }

// accountOf is the account part of a user_identity: up to its first '.'.
func accountOf(userIdentity string) string {
	account, _, _ := strings.Cut(userIdentity, ".")
	return account
}

func appendFrame(dst []byte, h sv2.Header, payload []byte) []byte {
	dst, _ = h.AppendBinary(dst)
	return append(dst, payload...)
}

// message is the event of one frame; its wire size is that of the
// frame on the downstream (miner) side.
func message(dir event.Direction, down *side, h sv2.Header, payload []byte) *event.Message {
	cl := sv2.Classify(h, payload)
	sum := sha256.Sum256(payload)
	m := &event.Message{
		Direction:     dir,
		Role:          role(cl.Role),
		Method:        cl.Name,
		WireSize:      down.wireSize(len(payload)),
		PayloadSize:   uint64(len(payload)),
		Payload:       append([]byte(nil), payload...),
		PayloadSha256: sum[:],
	}
	if cl.Has&sv2.KeyChannelID != 0 {
		m.ChannelId = new(cl.ChannelID)
	}
	if cl.Has&sv2.KeyRequestID != 0 {
		m.RequestId = new(cl.RequestID)
	}
	switch {
	case cl.Has&sv2.KeySequenceNumber != 0:
		m.SequenceNumber = new(cl.SequenceNumber)
	case cl.Has&sv2.KeyLastSequenceNumber != 0:
		m.SequenceNumber = new(cl.LastSequenceNumber)
	}
	return m
}

func role(r sv2.Role) event.Role {
	switch r {
	case sv2.RoleRequest:
		return event.Role_REQUEST
	case sv2.RoleResponse:
		return event.Role_RESPONSE
	case sv2.RoleNotification:
		return event.Role_NOTIFICATION
	case sv2.RoleError:
		return event.Role_ERROR
	}
	return event.Role_OTHER
}
