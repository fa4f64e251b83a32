package main

import (
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestWSLimitsConfig: the limit flags are every service's, a service's
// YAML keys override them one by one (strictly decoded), and what cannot
// be is refused at start.
func TestWSLimitsConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	parse := func(args ...string) (*fileConfig, *wsLimitFlags, error) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.String("config", "", "")
		var lf wsLimitFlags
		lf.register(fs)
		fc, err := parseConfig(fs, append([]string{"--config", path}, args...))
		return fc, &lf, err
	}
	write(`
max-batch: 20
deny-methods: [admin_*, debug_*]
services:
  - id: sol
    protocol: WEBSOCKET_JSONRPC
    upstream: ws://one/
    max_batch: 3
    messages_per_second: 50
  - id: arb
    protocol: WEBSOCKET_JSONRPC
    upstream: ws://two/
  - id: eth
    protocol: WEBSOCKET_JSONRPC
    deny_methods: []
    max_connections_per_ip: 100
`)
	fc, lf, err := parse("--trusted-proxies", "10.0.0.0/8, 192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	base, trusted, err := lf.limits()
	if err != nil {
		t.Fatal(err)
	}
	if base.MaxBatch != 20 || base.MaxConnectionsPerIP != 5 || !slices.Equal(base.DenyMethods, []string{"admin_*", "debug_*"}) {
		t.Fatalf("flags: %+v", base)
	}
	if !slices.Equal(trusted, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}) {
		t.Fatalf("trusted proxies %v", trusted)
	}
	routes, err := wsRoutes(fc.Services, base, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	sol := routes["sol"].Limits
	if sol == nil || sol.MaxBatch != 3 || sol.MessagesPerSecond != 50 || !slices.Equal(sol.DenyMethods, base.DenyMethods) {
		t.Fatalf("sol: %+v", sol)
	}
	if routes["arb"].Limits != nil {
		t.Fatalf("arb sets no limit, got %+v", routes["arb"].Limits)
	}
	def, err := defaultLimits(fc.Services, "eth", base)
	if err != nil || def.MaxConnectionsPerIP != 100 || def.DenyMethods == nil || len(def.DenyMethods) != 0 || def.MaxBatch != 20 {
		t.Fatalf("eth, the default: %+v, %v", def, err)
	}

	write("services:\n  - id: sol\n    protocol: WEBSOCKET_JSONRPC\n    max_batches: 3\n")
	if _, _, err := parse(); err == nil || !strings.Contains(err.Error(), "max_batches") {
		t.Fatalf("a misspelt key: %v", err)
	}
	write("services:\n  - id: sol\n    protocol: WEBSOCKET_JSONRPC\n    upstream: ws://x/\n    deny_methods: ['a*b']\n")
	fc, lf, _ = parse()
	base, _, _ = lf.limits()
	if _, err := wsRoutes(fc.Services, base, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "sol") {
		t.Fatalf("a bad pattern: %v", err)
	}
	write("")
	for _, args := range [][]string{{"--trusted-proxies", "nope"}, {"--deny-methods", "x*y"}, {"--messages-per-second", "-1"}} {
		_, lf, err := parse(args...)
		if err == nil {
			_, _, err = lf.limits()
		}
		if err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
}
