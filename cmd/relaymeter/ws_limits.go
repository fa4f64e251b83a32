package main

import (
	"flag"
	"fmt"
	"net/netip"

	"github.com/relaymeter/relaymeter/ingest/ws"
)

// wsLimitFlags are the flags of the WebSocket edge's per-client limits,
// shared by edge ws and dev: the limits of every service that does not set
// its own in the YAML file (services[].max_batch and the like).
type wsLimitFlags struct {
	maxBatch, perIP, burst int
	rate                   float64
	allow, deny, trusted   string
}

func (f *wsLimitFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.maxBatch, "max-batch", 10, "most elements of a JSON-RPC batch; a larger one is answered with one -32600 error, not forwarded (-1: no limit)")
	fs.IntVar(&f.perIP, "max-connections-per-ip", 5, "most connections one client address may have open to a service; beyond it HTTP 429 (-1: no limit)")
	fs.Float64Var(&f.rate, "messages-per-second", 0, "messages per second each connection may send (a token bucket); a request beyond it is answered with -32005 (0: no limit)")
	fs.IntVar(&f.burst, "message-burst", 0, "messages a connection may send at once within --messages-per-second (default: the rate, at least 1)")
	fs.StringVar(&f.allow, "allow-methods", "", "JSON-RPC methods let through, comma-separated names or prefixes ending in * (default: all)")
	fs.StringVar(&f.deny, "deny-methods", "", "JSON-RPC methods answered with -32601 by the edge, comma-separated names or prefixes ending in *, e.g. admin_*,debug_*")
	fs.StringVar(&f.trusted, "trusted-proxies", "", "CIDRs of reverse proxies whose X-Forwarded-For names the client address --max-connections-per-ip counts, comma-separated")
}

// limits are the flags' limits, and the trusted proxies.
func (f *wsLimitFlags) limits() (ws.Limits, []netip.Prefix, error) {
	l := ws.Limits{MaxBatch: f.maxBatch, MaxConnectionsPerIP: f.perIP, MessagesPerSecond: f.rate, MessageBurst: f.burst,
		AllowMethods: splitList(f.allow), DenyMethods: splitList(f.deny)}
	if err := l.Validate(); err != nil {
		return l, nil, fmt.Errorf("--max-batch, --max-connections-per-ip, --messages-per-second, --message-burst, --allow-methods, --deny-methods: %w", err)
	}
	var trusted []netip.Prefix
	for _, s := range splitList(f.trusted) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return l, nil, fmt.Errorf("--trusted-proxies %q: want CIDRs (10.0.0.0/8) or addresses", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		trusted = append(trusted, p.Masked())
	}
	return l, trusted, nil
}

// serviceLimits are the limits of s: base with what its YAML entry sets
// over it, nil when it sets none (the edge's default then applies).
func serviceLimits(s serviceConfig, base ws.Limits) (*ws.Limits, error) {
	if s.MaxBatch == nil && s.MaxConnectionsPerIP == nil && s.MessagesPerSecond == nil && s.MessageBurst == nil &&
		s.AllowMethods == nil && s.DenyMethods == nil {
		return nil, nil
	}
	l := base
	if s.MaxBatch != nil {
		l.MaxBatch = *s.MaxBatch
	}
	if s.MaxConnectionsPerIP != nil {
		l.MaxConnectionsPerIP = *s.MaxConnectionsPerIP
	}
	if s.MessagesPerSecond != nil {
		l.MessagesPerSecond = *s.MessagesPerSecond
		if s.MessageBurst == nil {
			l.MessageBurst = 0 // the new rate's default
		}
	}
	if s.MessageBurst != nil {
		l.MessageBurst = *s.MessageBurst
	}
	if s.AllowMethods != nil {
		l.AllowMethods = s.AllowMethods
	}
	if s.DenyMethods != nil {
		l.DenyMethods = s.DenyMethods
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("service %s: %w", s.ID, err)
	}
	return &l, nil
}

// defaultLimits are the limits of the edge's default service id: what its
// YAML entry sets over base, if it is listed.
func defaultLimits(services []serviceConfig, id string, base ws.Limits) (ws.Limits, error) {
	for _, s := range services {
		if s.ID == id {
			l, err := serviceLimits(s, base)
			if err != nil || l == nil {
				return base, err
			}
			return *l, nil
		}
	}
	return base, nil
}
