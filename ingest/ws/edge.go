// Package ws is the WebSocket JSON-RPC edge: an http.Handler that accepts
// clients presenting an application's API key, at ws://HOST/v1/<key> or
// with an Authorization: Bearer <key> header, dials the configured upstream
// for each, forwards text and binary messages both ways in order, and
// records every message, classified from its JSON-RPC envelope, through the
// recorder before forwarding it. The stream bills the key's application.
//
// Decisions worth knowing:
//   - The key is resolved (Config.Keys, an identity.Cache) before the
//     upstream is dialled and before the handshake is accepted. A key that
//     is missing, malformed, unknown, revoked, expired, of a disabled
//     application or not an application key is answered with HTTP 401 and
//     a JSON-RPC error body; a key the registry cannot be asked about, with
//     503. No stream is recorded for a refusal, and neither the key nor the
//     path holding it is ever logged or recorded: streams name the key by
//     its id. The accepted forms are exactly those of docs/identity.md, "At
//     the edges".
//   - Config.Services are further services, each under its own first path
//     segment (ws://HOST/<service>/v1/<key>) with its own upstream; the
//     route is chosen once per connection, before the key is resolved. A
//     path whose first segment names no configured service where one is
//     expected is answered with HTTP 404 (docs/ws-edge.md, "Routes").
//   - Config.OpenAccess, for trusted deployments only, also accepts
//     ws://HOST/<application> (and ws://HOST/<service>/<application>):
//     the segment names the application billed, unchecked. Keys still work
//     then, and v1 is never taken as an application name.
//   - wire_size and payload_size are the WebSocket message payload length
//     (all frames of a fragmented message, without frame headers or
//     masking); compression is not negotiated on either side.
//   - An upstream that cannot be dialled is answered with HTTP 502 before
//     the client's handshake is accepted, so no stream is recorded; a
//     recorder that cannot open the stream is answered with HTTP 503.
//   - Close codes pass through: a close from one side is sent to the other
//     with the same code and reason. A message over MaxMessageSize closes
//     both sides with 1009; a side lost without a close frame closes the
//     other with 1001 (client lost) or 1011 (upstream lost); a recorder
//     failure closes both with 1011; Edge.Close closes both with 1001.
//   - Memory is bounded in bytes (docs/ws-edge.md): per connection and
//     direction by QueueBytes, for the whole edge by BufferBytes, counting
//     buffer capacities, messages being read included. A full queue stops
//     the edge reading the side its messages come from; a side that does
//     not take a write within WriteTimeout ends the connection (a client
//     with 1008, "client not reading"); a reader that cannot get buffer
//     space for twice WriteTimeout closes its client with 1013.
//   - Pings need the peer's pong to be read, so a connection whose reader
//     is held up by back-pressure (recorder, queue) for longer than
//     PingInterval is treated as lost.
//   - The upstream URL's userinfo, path and query may hold API keys: only
//     its scheme and host are ever logged or recorded.
//   - Limits (Config.Limits, Route.Limits) bound what one client may do:
//     a batch's size (-32600), messages per second (-32005), methods
//     (-32601), connections per client address (HTTP 429 before the
//     upgrade; X-Forwarded-For is read from Config.TrustedProxies only).
//     The client's message is recorded as it came, marked
//     absorbed_by_edge, and not forwarded; the edge's answer is recorded
//     with origin EDGE and written to the client in order with the
//     upstream's messages (docs/websocket.md).
package ws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
)

// Recorder opens recorded streams; *record.Recorder satisfies it.
type Recorder interface {
	Open(ctx context.Context, opened *event.StreamOpened) (*record.Stream, error)
}

// Forwarding is when the edge forwards a message it has recorded.
type Forwarding int

const (
	// ForwardAfterAck forwards a message once its event is durable (Kafka
	// acknowledged it): no message ever crosses the edge unrecorded, even if
	// the edge is killed. It costs latency (a produce round trip), not
	// throughput: each direction keeps up to QueueBytes of messages in
	// flight.
	ForwardAfterAck Forwarding = iota
	// ForwardAfterQueue forwards a message once its event is queued in the
	// recorder: lower latency, but a killed edge loses the events still
	// queued (a graceful stop spools them).
	ForwardAfterQueue
)

// Config configures an Edge.
type Config struct {
	// Recorder records every stream; required.
	Recorder Recorder
	// Upstream is the ws:// or wss:// URL every client is proxied to;
	// required. It may carry credentials, which are never logged or
	// recorded. Several URLs, comma-separated (a comma inside one
	// percent-encoded), make a pool: a new client goes to the healthy one
	// with the fewest clients, and a client whose upstream is lost or turns
	// unhealthy moves to another without its connection closing, its
	// subscriptions re-created there (docs/websocket.md, "Failover").
	Upstream string
	// Service is the metered service (default "eth"), served at the root:
	// ws://HOST/v1/<key>.
	Service string
	// Services are further services, by id, each served under its own
	// first path segment (ws://HOST/<id>/v1/<key>) and proxied to its own
	// upstream; docs/ws-edge.md, "Routes", has the whole table. Ids are
	// case-sensitive path segments: letters, digits, '-', '_', '.' and
	// '~', never "v1".
	Services map[string]Route
	// Supplier is who is paid for the traffic.
	Supplier string
	// Keys resolves the API key each client presents to the application
	// its stream bills; required unless OpenAccess. Its answers may be as
	// old as its TTL: a revoked key keeps opening streams that long.
	Keys Keys
	// OpenAccess also accepts clients that present no key and name the
	// application billed in the last path segment (ws://HOST/<application>),
	// believed as is: anyone who can reach the edge can bill anyone. For
	// trusted deployments (a private network, dev) only.
	OpenAccess bool
	// MaxMessageSize is the largest message accepted from either side
	// (default 1 MiB); a larger one closes both sides with 1009. A message
	// of n bytes is read into a buffer of the next power of two above
	// n+512 bytes (4 KiB at least), so a 1 MiB message holds 2 MiB.
	MaxMessageSize int64
	// QueueBytes bounds, per connection and direction, the buffers of
	// messages read from one side and not yet written to the other, while
	// they wait to be durable or for the socket (default 4 MiB; a message
	// alone is always admitted). A full queue stops the edge reading the
	// side the messages come from (back-pressure) until there is room; a
	// side that stops reading is closed by WriteTimeout, which empties its
	// queue.
	QueueBytes int64
	// BufferBytes bounds the buffers of all connections together: messages
	// being read, queued and being written (default 256 MiB; at least twice
	// the buffer of a MaxMessageSize message). A reader that finds it
	// exhausted waits; one that waits longer than twice WriteTimeout closes
	// its connection, the client with 1013 (try again later).
	BufferBytes int64
	// WriteTimeout bounds each write to either side (default 10s). A client
	// that does not take a message in time is closed with 1008 ("client not
	// reading"); an upstream that does not ends the connection, the client
	// getting 1011.
	WriteTimeout time.Duration
	// PayloadCapture is how much of each payload is recorded: negative the
	// whole payload (up to record.MaxCapture), 0 none (the default), N the
	// first N bytes. payload_sha256 always covers the whole payload.
	PayloadCapture int64
	// Forwarding says when a message is forwarded relative to its
	// recording (default ForwardAfterAck).
	Forwarding Forwarding
	// PingInterval is how often both sides are pinged (default 30s); a side
	// that does not answer within the interval is considered lost. Negative
	// disables pings.
	PingInterval time.Duration
	// DialTimeout bounds dialling the upstream (default 10s), and, after a
	// move, the wait for the new upstream to answer the re-subscriptions.
	DialTimeout time.Duration
	// MaxHeadLag is how many blocks an upstream of a pool may be behind
	// the best one before it is unhealthy (default 5).
	MaxHeadLag uint64
	// HealthInterval is how often each upstream of a pool is asked its
	// eth_blockNumber on a connection of the edge's own (default 2s).
	HealthInterval time.Duration
	// HealthTimeout is how long an upstream of a pool has to answer a
	// health check (default 5s); one that does not is unhealthy.
	HealthTimeout time.Duration
	// MaxSubscriptions bounds the subscriptions of a connection, open and
	// being opened (default 100): an eth_subscribe beyond it is answered
	// -32005 by the edge, recorded and not forwarded.
	MaxSubscriptions int
	// MaxConnections bounds concurrent client connections (default 10000);
	// beyond it clients get HTTP 503.
	MaxConnections int
	// Limits are what one client may do on the default service's
	// connections (a batch's size, connections per address, messages per
	// second, methods); a Route has its own. The zero value is the
	// defaults (Limits).
	Limits Limits
	// TrustedProxies are the peers (reverse proxies, load balancers) whose
	// X-Forwarded-For names the client address that
	// Limits.MaxConnectionsPerIP counts (the right-most address in it that
	// is not a trusted proxy's); any other peer's header is ignored. None
	// by default.
	TrustedProxies []netip.Prefix
	// OriginPatterns are the browser origins accepted (default all, as
	// public JSON-RPC endpoints are used from any dapp).
	OriginPatterns []string
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the edge's metrics; nil registers none.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Service == "" {
		c.Service = "eth"
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 1 << 20
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = 4 << 20
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = 256 << 20
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PingInterval == 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.MaxHeadLag == 0 {
		c.MaxHeadLag = 5
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = 2 * time.Second
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = 5 * time.Second
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = 100
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 10000
	}
	if c.OriginPatterns == nil {
		c.OriginPatterns = []string{"*"}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports whether c, with its defaults applied, is usable.
func (c Config) Validate() error {
	c.setDefaults()
	if c.Recorder == nil {
		return errors.New("ws: config: no recorder")
	}
	if _, err := newRoute(c.Service, c.Upstream, 0); err != nil {
		return fmt.Errorf("ws: config: %w", err)
	}
	for id, r := range c.Services {
		if err := checkServiceID(id); err != nil {
			return fmt.Errorf("ws: config: %w", err)
		}
		if _, err := newRoute(id, r.Upstream, 0); err != nil {
			return fmt.Errorf("ws: config: service %s: %w", id, err)
		}
		if r.Limits != nil {
			if err := r.Limits.Validate(); err != nil {
				return fmt.Errorf("ws: config: service %s: %w", id, err)
			}
		}
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("ws: config: %w", err)
	}
	if c.Forwarding != ForwardAfterAck && c.Forwarding != ForwardAfterQueue {
		return fmt.Errorf("ws: config: unknown forwarding mode %d", c.Forwarding)
	}
	if c.MaxMessageSize < 0 || c.MaxConnections < 0 || c.DialTimeout < 0 || c.QueueBytes < 0 || c.BufferBytes < 0 || c.WriteTimeout < 0 ||
		c.HealthInterval < 0 || c.HealthTimeout < 0 || c.MaxSubscriptions < 0 {
		return errors.New("ws: config: negative limit")
	}
	if need := 2 * bufFor(c.MaxMessageSize); c.BufferBytes < need {
		return fmt.Errorf("ws: config: buffer bytes %d cannot hold a message of max message size %d (need %d)", c.BufferBytes, c.MaxMessageSize, need)
	}
	if c.Keys == nil && !c.OpenAccess {
		return errors.New("ws: config: no key resolver, and open access is off: no client could connect")
	}
	return nil
}

// Edge is the WebSocket JSON-RPC edge, an http.Handler.
type Edge struct {
	cfg    Config
	log    *slog.Logger
	def    *route            // the default service, at the root
	routes map[string]*route // the named services, by id
	slots  chan struct{}
	m      metrics
	bufs   *buffers

	mu      sync.Mutex
	closed  bool
	proxies map[*proxy]struct{}
	wg      sync.WaitGroup

	stopWatch context.CancelFunc // the pools' health checks
	watching  sync.WaitGroup
}

// New builds an edge.
func New(cfg Config) (*Edge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	def, _ := newRoute(cfg.Service, cfg.Upstream, cfg.PayloadCapture)
	def.lim = newLimits(cfg.Limits)
	e := &Edge{
		cfg:     cfg,
		log:     cfg.Logger,
		def:     def,
		routes:  make(map[string]*route, len(cfg.Services)),
		slots:   make(chan struct{}, cfg.MaxConnections),
		proxies: map[*proxy]struct{}{},
		bufs:    newBuffers(cfg.BufferBytes, 2*cfg.WriteTimeout),
	}
	for id, r := range cfg.Services {
		capture := cfg.PayloadCapture
		if r.PayloadCapture != nil {
			capture = *r.PayloadCapture
		}
		rt, _ := newRoute(id, r.Upstream, capture)
		rt.lim = def.lim
		if r.Limits != nil {
			rt.lim = newLimits(*r.Limits)
		}
		e.routes[id] = rt
	}
	if err := e.m.register(cfg.Registerer, func() float64 { return float64(e.bufs.used.Load()) }); err != nil {
		return nil, err
	}
	var wctx context.Context
	wctx, e.stopWatch = context.WithCancel(context.Background())
	for _, rt := range append([]*route{e.def}, slices.Collect(maps.Values(e.routes))...) {
		rt.pool.maxLag, rt.pool.log = cfg.MaxHeadLag, e.log
		if rt.pool.failover() {
			e.watching.Go(func() {
				rt.pool.watch(wctx, cfg.HealthInterval, cfg.HealthTimeout, func(m *member, ok bool) { e.onHealth(rt.pool, m, ok) })
			})
		}
	}
	if cfg.OpenAccess {
		e.log.Warn("ws: open access: clients that present no API key bill the application their path names, unchecked; for trusted deployments only")
	}
	return e, nil
}

// redact keeps only a URL's scheme and host: userinfo, path and query can
// all hold API keys.
func redact(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
}

// ServeHTTP proxies one client connection to the upstream of the service
// its path routes to, billed to the application of the key it presents. In
// open access, a request with no key has the last path segment
// (percent-decoded, then cleaned with event.CleanText to at most
// event.MaxIDLen bytes) name the application.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "ws: WebSocket upgrade required", http.StatusUpgradeRequired)
		return
	}
	rt, secret, app, ref := e.credential(r)
	if ref != nil {
		e.refuse(w, r, ref)
		return
	}
	ip, ref := e.admit(r, rt)
	if ref != nil {
		e.refuse(w, r, ref)
		return
	}
	counted := true
	defer func() {
		if counted {
			rt.lim.release(ip)
		}
	}()
	select {
	case e.slots <- struct{}{}:
		defer func() { <-e.slots }()
	default:
		e.m.rejected.Inc()
		http.Error(w, "ws: too many connections", http.StatusServiceUnavailable)
		return
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		http.Error(w, "ws: edge shutting down", http.StatusServiceUnavailable)
		return
	}
	e.wg.Add(1)
	e.mu.Unlock()
	defer e.wg.Done()

	ctx := r.Context()
	var keyID string
	if secret != "" {
		// Inside a slot: lookups are bounded as connections are.
		b, ref := e.resolve(ctx, secret)
		if ref != nil {
			e.refuse(w, r, ref)
			return
		}
		app, keyID = b.app, b.keyID
	}
	protocols := subprotocols(r)
	var up *websocket.Conn
	var mem *member
	var upCork func() *corkConn
	if rt.pool.failover() {
		// Writes toward a pool's upstream are not corked: the connection
		// can change under the forwarder.
		up, mem = e.dialPool(ctx, rt, protocols, nil)
	} else {
		up, upCork = e.dialOne(ctx, rt, protocols)
		mem = rt.pool.members[0]
	}
	if up == nil {
		http.Error(w, "ws: upstream unavailable", http.StatusBadGateway)
		return
	}

	opened := &event.StreamOpened{
		Protocol:         event.Protocol_WEBSOCKET_JSONRPC,
		Service:          rt.service,
		Application:      app,
		ApiKeyId:         keyID,
		Supplier:         e.cfg.Supplier,
		ClientAddr:       r.RemoteAddr,
		UpstreamAddr:     mem.redacted,
		UpstreamSecurity: event.Security_SECURITY_NONE,
		PayloadCapture:   rt.capture,
	}
	if r.TLS != nil {
		opened.ClientSecurity = event.Security_TLS
	}
	if mem.tls {
		opened.UpstreamSecurity = event.Security_TLS
	}
	stream, err := e.cfg.Recorder.Open(ctx, opened)
	if err != nil {
		up.Close(websocket.StatusInternalError, "metering unavailable")
		e.log.Error("ws: open stream", "err", err)
		http.Error(w, "ws: metering unavailable", http.StatusServiceUnavailable)
		return
	}
	var accepted []string
	if sp := up.Subprotocol(); sp != "" {
		accepted = []string{sp}
	}
	cw := &corkingWriter{ResponseWriter: w, bufs: e.bufs, writes: e.m.socketWrites.WithLabelValues("client")}
	client, err := websocket.Accept(cw, r, &websocket.AcceptOptions{
		Subprotocols:    accepted,
		OriginPatterns:  e.cfg.OriginPatterns,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		up.Close(websocket.StatusGoingAway, "client handshake failed")
		e.closeStream(stream, &event.StreamClosed{Reason: "client handshake failed",
			ForwardedToUpstreamThroughSeq: new(uint64(0)), ForwardedToClientThroughSeq: new(uint64(0))})
		return
	}
	client.SetReadLimit(e.cfg.MaxMessageSize + 1)

	p := newProxy(e, stream, app, rt, mem, protocols, client, up)
	p.limits = rt.lim.forConn()
	p.client.cork = cw.conn
	if upCork != nil {
		p.upstream.cork = upCork()
	}
	mem.join(p)
	e.mu.Lock()
	e.proxies[p] = struct{}{}
	closing := e.closed
	e.mu.Unlock()
	if closing {
		p.finish(shutdownCause)
	}
	e.m.conns.Inc()
	e.m.active.Inc()
	p.run()
	p.upMu.Lock()
	p.member.leave(p)
	p.upMu.Unlock()
	// Over: its place is free before its close is recorded, which may
	// wait for the recorder.
	rt.lim.release(ip)
	counted = false
	e.m.active.Dec()
	e.mu.Lock()
	delete(e.proxies, p)
	e.mu.Unlock()
	e.closeStream(stream, &event.StreamClosed{Reason: p.cause.reason, CloseCode: int32(p.cause.code),
		ForwardedToUpstreamThroughSeq: new(p.toUp.forwarded), ForwardedToClientThroughSeq: new(p.toClient.forwarded)})
}

// dialOne dials the upstream of a route of one, its writes corked.
func (e *Edge) dialOne(ctx context.Context, rt *route, protocols []string) (*websocket.Conn, func() *corkConn) {
	dctx, cancel := context.WithTimeout(ctx, e.cfg.DialTimeout)
	defer cancel()
	httpClient, upCork := corkingClient(e.bufs, e.m.socketWrites.WithLabelValues("upstream"))
	up, _, err := websocket.Dial(dctx, rt.upstream, &websocket.DialOptions{
		HTTPClient:      httpClient,
		Subprotocols:    protocols,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		e.m.dialErrors.Inc()
		e.log.Warn("ws: upstream unavailable", "service", rt.service, "upstream", rt.redacted, "err", rt.scrub(err))
		return nil, nil
	}
	up.SetReadLimit(e.cfg.MaxMessageSize + 1)
	return up, upCork
}

// closeStream records the stream's end, waiting a bounded time for room in
// the recorder.
func (e *Edge) closeStream(s *record.Stream, closed *event.StreamClosed) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx, closed); err != nil {
		e.log.Error("ws: close stream", "stream", s.ID(), "err", err)
	}
}

// Close closes every client connection and its upstream with 1001 (going
// away), refuses new connections, and waits until their streams are
// recorded as closed or ctx ends. It does not close the recorder.
func (e *Edge) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	ps := make([]*proxy, 0, len(e.proxies))
	for p := range e.proxies {
		ps = append(ps, p)
	}
	e.mu.Unlock()
	for _, p := range ps {
		go p.finish(shutdownCause) // handshakes run concurrently
	}
	e.stopWatch()
	e.watching.Wait()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ws: close: connections still closing: %w", context.Cause(ctx))
	}
}

// scrub returns err's text without the route's upstream URL, which may
// hold keys.
func (rt *route) scrub(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	s = strings.ReplaceAll(s, rt.upstream, rt.redacted)
	if u, perr := url.Parse(rt.upstream); perr == nil {
		for _, secret := range []string{u.User.String(), u.RawQuery, u.Path} {
			if len(secret) > 1 {
				s = strings.ReplaceAll(s, secret, "REDACTED")
			}
		}
	}
	return s
}

func subprotocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
