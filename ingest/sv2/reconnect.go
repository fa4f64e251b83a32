package sv2

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/stratum/sv2"
)

// drainGrace bounds how long a miner sent elsewhere by a rewritten
// Reconnect may take to close its side after reading it.
const drainGrace = 2 * time.Second

// redirectKey is what identifies a miner when the edge dials for it: the
// SetupConnection's protocol and device_id and the miner's IP address (its
// port changes with every connection). Miners behind one address that send
// no device_id share a redirect.
func redirectKey(protocol uint8, remote net.Addr, deviceID string) string {
	host := remote.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strconv.Itoa(int(protocol)) + "|" + host + "|" + deviceID
}

// redirects is the bounded table of where pools' Reconnects asked miners
// to go, each entry valid for ttl.
type redirects struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[string]redirect
}

type redirect struct {
	addr string
	exp  time.Time
}

func newRedirects(ttl time.Duration, max int, now func() time.Time) *redirects {
	return &redirects{ttl: ttl, max: max, now: now, m: map[string]redirect{}}
}

// get returns the address key was redirected to, if it has not expired.
func (r *redirects) get(key string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.m[key]
	if !ok {
		return "", false
	}
	if !r.now().Before(d.exp) {
		delete(r.m, key)
		return "", false
	}
	return d.addr, true
}

// set redirects key to addr for ttl. A full table drops its expired
// entries, then, if still full, the entry closest to expiry.
func (r *redirects) set(key, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if _, ok := r.m[key]; !ok && len(r.m) >= r.max {
		var oldest string
		var oldestExp time.Time
		for k, d := range r.m {
			if !now.Before(d.exp) {
				delete(r.m, k)
				continue
			}
			if oldest == "" || d.exp.Before(oldestExp) {
				oldest, oldestExp = k, d.exp
			}
		}
		if len(r.m) >= r.max {
			delete(r.m, oldest)
		}
	}
	r.m[key] = redirect{addr: addr, exp: now.Add(r.ttl)}
}

func (r *redirects) drop(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, key)
}

// len is the number of entries, expired ones included.
func (r *redirects) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// requestedAddr is the address a Reconnect asks for, relative to the
// upstream the connection dialled: an empty new_host is that host, a
// new_port 0 that port.
func requestedAddr(dialled string, r *sv2.Reconnect) string {
	host, port, err := net.SplitHostPort(dialled)
	if err != nil {
		host, port = dialled, ""
	}
	if r.NewHost != "" {
		host = r.NewHost
	}
	if r.NewPort != 0 {
		port = strconv.Itoa(int(r.NewPort))
	}
	return net.JoinHostPort(host, port)
}

// reconnect handles a pool's Reconnect in rewrite mode: the address asked
// for becomes this miner's redirect, the miner gets a Reconnect to the edge
// (recorded as it crossed, the pool's request kept in the close reason),
// and its connection drains and closes.
func (c *conn) reconnect(h sv2.Header, payload []byte) {
	e := c.e
	dir := event.Direction_UPSTREAM_TO_CLIENT
	var asked sv2.Reconnect
	if err := asked.Decode(payload); err != nil {
		c.recordOnly(dir, h, payload)
		c.end("malformed Reconnect from upstream, not forwarded: " + err.Error())
		return
	}
	target := requestedAddr(c.upAddr, &asked)
	e.redirects.set(c.key, target)
	sent := sv2.Reconnect{NewHost: e.advHost, NewPort: e.advPort}
	frame, err := sv2.AppendMessage(nil, &sent)
	if err != nil {
		c.end("encoding Reconnect: " + err.Error())
		return
	}
	rh, rp, _, _ := sv2.SplitFrame(frame, sv2.MaxU24)
	reason := fmt.Sprintf("upstream Reconnect to %s (new_host %q new_port %d) rewritten to new_host %q new_port %d; "+
		"this miner's connections go to %s for %v", target, asked.NewHost, asked.NewPort, sent.NewHost, sent.NewPort, target, e.cfg.ReconnectTTL)
	// The reason is set first: the miner may close as soon as it has read
	// the Reconnect, before the drain starts.
	ours := c.setReason(reason)
	if err := c.forward(dir, c.down, rh, rp, true); err != nil {
		if ours {
			c.replaceReason(reason, "upstream to client: writing the rewritten Reconnect: "+err.Error())
		}
		c.end("upstream to client: " + err.Error())
		return
	}
	e.m.reconnects.WithLabelValues("rewritten").Inc()
	e.log.Info("sv2 edge: pool sent a miner elsewhere; the miner comes back through the edge",
		"client", c.down.addr, "upstream", c.upAddr, "redirect", target, "ttl", e.cfg.ReconnectTTL)
	c.drain(reason)
}

// drain ends the connection for reason without cutting the Reconnect just
// written: the pool's side closes, the miner's is half-closed (the miner
// reads the Reconnect, then EOF) and closes once the miner closes or within
// drainGrace; meanwhile what the miner sends is recorded, not forwarded.
func (c *conn) drain(reason string) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.reason.Load() == nil {
		c.reason.Store(&reason)
	}
	if c.ended {
		return
	}
	c.draining.Store(true)
	if c.upRaw != nil {
		_ = c.upRaw.Close()
	}
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.raw.SetReadDeadline(time.Now().Add(drainGrace))
}

// setReason records reason unless one is recorded, and reports whether it
// did.
func (c *conn) setReason(reason string) bool {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.reason.Load() != nil {
		return false
	}
	c.reason.Store(&reason)
	return true
}

// replaceReason replaces the recorded reason old with reason.
func (c *conn) replaceReason(old, reason string) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if r := c.reason.Load(); r != nil && *r == old {
		c.reason.Store(&reason)
	}
}
