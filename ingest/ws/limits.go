package ws

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/time/rate"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// Limits are what one client may do on a service's connections. The edge
// answers what goes beyond them itself, with a protocol-correct JSON-RPC
// error recorded as a message of origin EDGE, and forwards nothing of it
// (docs/websocket.md, "Limits").
type Limits struct {
	// MaxBatch is the most elements a batch may have (default 10). A
	// larger one is answered with one JSON-RPC error object, code -32600,
	// id null. Negative: no limit but the edge's own (a batch of more than
	// 10000 elements closes the connection with 1009).
	MaxBatch int
	// MaxConnectionsPerIP is the most connections one client address may
	// have open to the service at once (default 5); beyond it the handshake
	// is answered with HTTP 429. The address is the peer's, or, when the
	// peer is one of Config.TrustedProxies, the one X-Forwarded-For names.
	// Negative: no limit.
	MaxConnectionsPerIP int
	// MessagesPerSecond is the rate of a connection's token bucket: each
	// message from the client takes a token, and a request that finds none
	// is answered with -32005 "rate limit exceeded" under its own id (a
	// notification, a response or a message that is not JSON-RPC is
	// dropped unanswered, as JSON-RPC answers none of them). Notifications from the upstream are never
	// limited. 0 (the default): no limit.
	MessagesPerSecond float64
	// MessageBurst is the bucket's size (default: MessagesPerSecond rounded
	// up, at least 1).
	MessageBurst int
	// DenyMethods are method patterns answered with -32601 by the edge: a
	// name, or a prefix ending in '*' ("admin_*", "debug_*"), matched
	// ignoring ASCII case. AllowMethods, when not empty, are the only
	// patterns let through. A batch naming a method not let through is
	// answered as a whole, with one error object of id null.
	AllowMethods, DenyMethods []string
}

func (l *Limits) setDefaults() {
	if l.MaxBatch == 0 {
		l.MaxBatch = 10
	}
	if l.MaxConnectionsPerIP == 0 {
		l.MaxConnectionsPerIP = 5
	}
	if l.MessagesPerSecond > 0 && l.MessageBurst == 0 {
		l.MessageBurst = max(1, int(l.MessagesPerSecond+0.999999))
	}
}

// Validate reports whether l, with its defaults applied, is usable.
func (l Limits) Validate() error {
	l.setDefaults()
	if l.MessagesPerSecond < 0 || l.MessageBurst < 0 {
		return fmt.Errorf("limits: negative messages per second or burst")
	}
	for _, p := range append(l.AllowMethods, l.DenyMethods...) {
		if err := checkPattern(p); err != nil {
			return fmt.Errorf("limits: %w", err)
		}
	}
	return nil
}

// checkPattern reports whether p is a method pattern: a name, or a prefix
// and a final '*'.
func checkPattern(p string) error {
	name := strings.TrimSuffix(p, "*")
	switch {
	case p == "":
		return fmt.Errorf("empty method pattern")
	case strings.ContainsAny(name, "*\"\\") || name != strings.TrimSpace(name):
		return fmt.Errorf("method pattern %q: want a method name, or a prefix and a final '*'", p)
	}
	return nil
}

// limits are a service's Limits, ready to check, with the count of its
// connections per client address.
type limits struct {
	maxBatch     int
	perIP        int
	rate         rate.Limit
	burst        int
	allow, deny  []string // patterns; a final '*' makes a prefix
	filterMethod bool

	mu    sync.Mutex
	conns map[netip.Addr]int
}

func newLimits(l Limits) *limits {
	l.setDefaults()
	return &limits{maxBatch: l.MaxBatch, perIP: l.MaxConnectionsPerIP, rate: rate.Limit(l.MessagesPerSecond), burst: l.MessageBurst,
		allow: l.AllowMethods, deny: l.DenyMethods, filterMethod: len(l.AllowMethods)+len(l.DenyMethods) > 0,
		conns: map[netip.Addr]int{}}
}

// admit counts a connection from ip, unless ip has as many as it may; the
// caller calls release once the connection is over. An invalid ip (a peer
// address net/http could not give) is not counted.
func (l *limits) admit(ip netip.Addr) bool {
	if l.perIP < 0 || !ip.IsValid() {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[ip] >= l.perIP {
		return false
	}
	l.conns[ip]++
	return true
}

func (l *limits) release(ip netip.Addr) {
	if l.perIP < 0 || !ip.IsValid() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[ip]--; l.conns[ip] <= 0 {
		delete(l.conns, ip)
	}
}

// verdict is what the edge does with a client message.
type verdict uint8

const (
	pass          verdict = iota // forward it
	rateLimited                  // -32005
	batchTooLarge                // -32600
	methodDenied                 // -32601
	// subscriptionsLimit: with a pool, beyond the subscriptions'
	// bookkeeping's bounds (subscriptions, requests in flight, bytes):
	// -32005, answered by package subscriptions.
	subscriptionsLimit
)

// connLimits are the limits of one connection: its service's, and its
// token bucket (nil without a rate).
type connLimits struct {
	l      *limits
	bucket *rate.Limiter
}

func (l *limits) forConn() connLimits {
	c := connLimits{l: l}
	if l.rate > 0 {
		c.bucket = rate.NewLimiter(l.rate, l.burst)
	}
	return c
}

// check says what to do with the client message m, classified: the rate
// first (every client message takes a token), then the batch size, then
// the methods. It does not allocate.
func (c *connLimits) check(m *event.Message) verdict {
	if c.l == nil {
		return pass
	}
	if c.bucket != nil && !c.bucket.Allow() {
		return rateLimited
	}
	if c.l.maxBatch >= 0 && int(m.BatchSize) > c.l.maxBatch {
		return batchTooLarge
	}
	if c.l.filterMethod && c.l.denied(m) != "" {
		return methodDenied
	}
	return pass
}

// denied is the first method of m its service does not let through, "" if
// none.
func (l *limits) denied(m *event.Message) string {
	if m.BatchSize == 0 {
		if m.Method != "" && !l.allowed(m.Method) {
			return m.Method
		}
		return ""
	}
	for _, method := range m.BatchMethods {
		if method != "" && !l.allowed(method) {
			return method
		}
	}
	return ""
}

// allowed reports whether method is let through: it matches no deny
// pattern and, when there are allow patterns, one of them.
func (l *limits) allowed(method string) bool {
	if matchAny(l.deny, method) {
		return false
	}
	return len(l.allow) == 0 || matchAny(l.allow, method)
}

func matchAny(patterns []string, method string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if len(method) >= len(prefix) && strings.EqualFold(method[:len(prefix)], prefix) {
				return true
			}
		} else if strings.EqualFold(method, p) {
			return true
		}
	}
	return false
}

// admit counts r's connection against its client address on rt, or says
// why not: a malformed X-Forwarded-For from a trusted proxy (400), or an
// address with as many connections as it may have (429).
func (e *Edge) admit(r *http.Request, rt *route) (netip.Addr, *refusal) {
	ip, ok := e.clientIP(r)
	if !ok {
		return ip, &refusal{status: http.StatusBadRequest, reason: reasonForwarded,
			msg: "malformed X-Forwarded-For from a trusted proxy"}
	}
	if !rt.lim.admit(ip) {
		return ip, &refusal{status: http.StatusTooManyRequests, reason: reasonPerIP,
			msg: "too many connections from this address; close one and try again"}
	}
	return ip, nil
}

// clientIP is the address a connection counts against: the peer's, or,
// when the peer is a trusted proxy, the right-most address of
// X-Forwarded-For that is not a trusted proxy's (the left-most when all
// are). An entry that is not an address, where it is the one to take, is
// malformed (!ok): trusted proxies append addresses, so a client cannot
// put one there. A peer address that does not parse gives an invalid
// address, counted against nothing.
func (e *Edge) clientIP(r *http.Request) (ip netip.Addr, ok bool) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, true
	}
	ip = peer.Addr().Unmap()
	if !e.trusted(ip) {
		return ip, true
	}
	hs := r.Header.Values("X-Forwarded-For")
	for i := len(hs) - 1; i >= 0; i-- {
		h := hs[i]
		for h != "" {
			entry := h
			if j := strings.LastIndexByte(h, ','); j >= 0 {
				entry, h = h[j+1:], h[:j]
			} else {
				h = ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			a, ok := parseForwarded(entry)
			if !ok {
				return netip.Addr{}, false
			}
			ip = a
			if !e.trusted(a) {
				return a, true
			}
		}
	}
	return ip, true
}

// parseForwarded reads one X-Forwarded-For entry: an address, perhaps
// with a port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseForwarded(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func (e *Edge) trusted(ip netip.Addr) bool {
	for _, p := range e.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
