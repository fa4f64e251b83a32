// Package beam is the Beam mining edge: a TCP (optionally TLS) listener
// handler that proxies each miner connection to one connection to the Beam
// node, line by line, recording every line in both directions through the
// recorder, classified with stratum/beam, before forwarding it unchanged.
//
// Decisions worth knowing:
//   - The miner's first line must be a login: the node sends nothing
//     before one. Its api_key resolves through Config.Keys to the
//     application billed and the key's id; a key the registry does not know
//     bills the application "beam:" + the first 8 hex digits of the key's
//     sha256, unless Config.RejectUnknownKeys, which answers the login with
//     result -32003 from the edge and closes without dialling the node. A
//     key the registry refuses (revoked, expired, disabled application, not
//     an application key) is always answered with -32003. A first line that
//     is not a login, or no line within LoginTimeout, closes the connection
//     without dialling the node; no stream is recorded, as nothing crossed.
//   - The stream is opened once the login is attributed and the node
//     dialled; the login is its first message.
//   - The api_key is never recorded nor logged: a recorded payload is the
//     line as stratum/beam redacts it, and payload_sha256 covers the
//     recorded (redacted) form whenever redaction changed the line, so
//     that no hash of a key-bearing line is recorded either.
//   - wire_size and payload_size are the line's length with its LF; they
//     do not count TLS framing.
//   - Every line is forwarded once its event is durable (after-ack), in
//     order per direction; StreamClosed's forwarded_*_through_seq say what
//     crossed.
//   - A line over beam.MaxLineSize (LF included) from either side drops
//     both connections, as the node drops such a peer; the stream's close
//     reason says which side sent it. Invalid JSON is recorded (role OTHER,
//     its payload replaced by a placeholder) and forwarded unchanged: the
//     node answers it as it does.
//   - A logged-in connection with no line in either direction for
//     IdleTimeout is closed, reason "idle timeout".
//   - Lines the miner sends right behind its login (pipelined, before the
//     node answers) are kept in order: they follow the login to the node
//     once each is recorded.
//   - Memory per connection is bounded: each direction holds at most one
//     line (beam.MaxLineSize) and its redacted copy.
package beam

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
)

// Recorder opens recorded streams; *record.Recorder satisfies it.
type Recorder interface {
	Open(ctx context.Context, opened *event.StreamOpened) (*record.Stream, error)
}

// Keys resolves a miner's api_key to the principal it stands for;
// *identity.Cache satisfies it.
type Keys interface {
	Resolve(ctx context.Context, secret string) (identity.Principal, error)
}

// Config configures an Edge.
type Config struct {
	// Recorder records every stream; required.
	Recorder Recorder
	// Upstream is the node's stratum address, host:port; required.
	Upstream string
	// UpstreamTLS, when set, is the client configuration of TLS toward
	// the node (its ServerName defaults to Upstream's host); nil dials
	// plain TCP.
	UpstreamTLS *tls.Config
	// DownstreamTLS, when set, is the server configuration of TLS toward
	// miners; nil serves plain TCP.
	DownstreamTLS *tls.Config
	// Service is the metered service (default "beam").
	Service string
	// Supplier is who is paid for the traffic.
	Supplier string
	// Keys resolves api keys; nil treats every key as unknown.
	Keys Keys
	// RejectUnknownKeys answers the login of a key the registry does not
	// know with result -32003 and closes, without dialling the node.
	RejectUnknownKeys bool
	// LoginTimeout bounds the TLS handshake and the wait for the login
	// line, and, separately, resolving its key (default 10s).
	LoginTimeout time.Duration
	// DialTimeout bounds dialling the node, TLS handshake included
	// (default 10s).
	DialTimeout time.Duration
	// WriteTimeout bounds each write to either side (default 10s); a side
	// that does not take a line in time ends the connection.
	WriteTimeout time.Duration
	// IdleTimeout closes a logged-in connection with no line in either
	// direction for this long, reason "idle timeout" (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxConnections bounds concurrent miner connections, logged in or
	// not (default 10000); beyond it new connections are closed at once.
	// Each holds at most about four lines' worth of buffers per direction.
	MaxConnections int
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the edge's metrics; nil registers none.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Service == "" {
		c.Service = "beam"
	}
	if c.LoginTimeout == 0 {
		c.LoginTimeout = 10 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports whether c, with its defaults applied, is usable.
func (c Config) Validate() error {
	c.setDefaults()
	if c.Recorder == nil {
		return errors.New("beam: config: no recorder")
	}
	if _, _, err := net.SplitHostPort(c.Upstream); err != nil {
		return fmt.Errorf("beam: config: upstream %q: %w", c.Upstream, err)
	}
	if c.LoginTimeout < 0 || c.DialTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 || c.MaxConnections < 0 {
		return errors.New("beam: config: negative timeout or limit")
	}
	return nil
}

// DefaultIdleTimeout is Config.IdleTimeout's default.
const DefaultIdleTimeout = 10 * time.Minute

// Edge is the Beam mining edge.
type Edge struct {
	cfg Config
	log *slog.Logger
	m   metrics
	// slots holds a token per miner connection being served.
	slots chan struct{}

	mu     sync.Mutex
	closed bool
	conns  map[*conn]struct{}
	// pending are connections not yet proxied (TLS, login, dial).
	pending map[net.Conn]struct{}
	lns     map[net.Listener]struct{}
	wg      sync.WaitGroup
}

// New builds an edge.
func New(cfg Config) (*Edge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if cfg.UpstreamTLS != nil {
		cfg.UpstreamTLS = cfg.UpstreamTLS.Clone()
		if cfg.UpstreamTLS.ServerName == "" {
			host, _, _ := net.SplitHostPort(cfg.Upstream)
			cfg.UpstreamTLS.ServerName = host
		}
	}
	e := &Edge{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.MaxConnections), conns: map[*conn]struct{}{}, pending: map[net.Conn]struct{}{}, lns: map[net.Listener]struct{}{}}
	if err := e.m.register(cfg.Registerer); err != nil {
		return nil, err
	}
	return e, nil
}

// Serve accepts miner connections on ln until ln fails or the edge is
// closed, proxying each in its own goroutine. It returns nil once Close has
// been called.
func (e *Edge) Serve(ln net.Listener) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		ln.Close()
		return nil
	}
	e.lns[ln] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.lns, ln)
		e.mu.Unlock()
	}()
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
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("beam: accept: %w", err)
		}
		select {
		case e.slots <- struct{}{}:
		default:
			e.m.refused.WithLabelValues("too_many_connections").Inc()
			c.Close()
			continue
		}
		if !e.track(nil) {
			<-e.slots
			c.Close()
			continue
		}
		e.mu.Lock()
		e.pending[c] = struct{}{}
		e.mu.Unlock()
		go func() {
			defer func() { <-e.slots }()
			defer e.wg.Done()
			e.handle(c)
			e.mu.Lock()
			delete(e.pending, c)
			e.mu.Unlock()
		}()
	}
}

// track counts a connection in the edge's wait group (p nil) or registers
// its proxy; it reports false once the edge is closing.
func (e *Edge) track(p *conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	if p == nil {
		e.wg.Add(1)
	} else {
		delete(e.pending, p.raw)
		e.conns[p] = struct{}{}
	}
	return true
}

// Close stops the listeners, closes every proxied connection, and waits
// until their streams are recorded as closed or ctx ends. It does not close
// the recorder.
func (e *Edge) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	for ln := range e.lns {
		ln.Close()
	}
	for p := range e.conns {
		p.finish("edge shutting down")
	}
	for c := range e.pending {
		c.Close() // its login or handshake fails at once
	}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("beam: close: connections still closing: %w", context.Cause(ctx))
	}
}

// UnknownKeyApplication is the application billed for a key the registry
// does not know: "beam:" and the first 8 hex digits of the key's sha256.
func UnknownKeyApplication(apiKey string) string {
	sum := sha256.Sum256([]byte(apiKey))
	return "beam:" + hex.EncodeToString(sum[:4])
}
