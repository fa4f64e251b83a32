package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/internal/ethsim"
	"github.com/relaymeter/relaymeter/internal/eventtest"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
)

// TestConfigServiceUpstream: a service's upstream is one URL or a list.
func TestConfigServiceUpstream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(`
services:
  - id: sol
    protocol: WEBSOCKET_JSONRPC
    upstream: ws://one/
  - id: arb
    protocol: WEBSOCKET_JSONRPC
    upstream: [ws://first/, ws://second/]
  - id: eth
    protocol: WEBSOCKET_JSONRPC
`), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("config", "", "")
	fc, err := parseConfig(fs, []string{"--config", path})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, s := range fc.Services {
		got[s.ID] = s.Upstream
	}
	if len(got["sol"]) != 1 || got["sol"][0] != "ws://one/" || len(got["arb"]) != 2 || got["arb"][0] != "ws://first/" || got["eth"] != nil {
		t.Fatalf("upstreams %q", got)
	}
	os.WriteFile(path, []byte("services:\n  - id: sol\n    protocol: WEBSOCKET_JSONRPC\n    upstream: {url: ws://x/}\n"), 0o600)
	if _, err := parseConfig(fs, []string{"--config", path}); err == nil || !strings.Contains(err.Error(), "upstream") {
		t.Fatalf("a map as the upstream: %v", err)
	}
}

// TestEdgeRoutesRefused: edge ws refuses to start on a service whose
// upstream it could not route to, saying why.
func TestEdgeRoutesRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, service, want string }{
		{"another protocol", "  - id: btc\n    protocol: STRATUM_V2\n    upstream: ws://x/\n", "WEBSOCKET_JSONRPC"},
		{"v1", "  - id: v1\n    protocol: WEBSOCKET_JSONRPC\n    upstream: ws://x/\n", "reserved"},
		{"a slash", "  - id: a/b\n    protocol: WEBSOCKET_JSONRPC\n    upstream: ws://x/\n", "a/b"},
		{"not ws", "  - id: sol\n    protocol: WEBSOCKET_JSONRPC\n    upstream: https://u:SECRETPASS@x/\n", "sol"},
		{"empty", "  - id: sol\n    protocol: WEBSOCKET_JSONRPC\n    upstream: ['']\n", "empty"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
		if err := os.WriteFile(path, []byte("services:\n"+tc.service), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := cli(t, "edge", "ws", "--config", path, "--upstream", "ws://127.0.0.1:1/", "--supplier", "sup",
			"--kafka", "127.0.0.1:1", "--open-access", "--spool-dir", "", "--listen", "127.0.0.1:0")
		if code == 0 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "SECRETPASS") {
			t.Errorf("%s: exit %d, %s; want an error about %q naming no secret", tc.name, code, stderr, tc.want)
		}
	}
}

// TestEdgeRoutes runs `relaymeter edge ws --config` in-process with the
// default service and two named services, each on its own node: every
// stream records the service its path routed to and reaches that
// service's node, and a service route naming none is refused with 404.
func TestEdgeRoutes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, dbURL := pgtest.DB(t)
	ids := identity.NewRegistry(pool)
	app, err := ids.CreateApplication(ctx, "wallet")
	if err != nil {
		t.Fatal(err)
	}
	secret, key, err := ids.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: app.ID})
	if err != nil {
		t.Fatal(err)
	}
	kc := kafkatest.Start(t, kafkatest.Options{Partitions: 4, Topics: []string{topicMessages}})
	node := func(chainID uint64) string {
		n := ethsim.New(ethsim.Config{ChainID: chainID, HeadInterval: -1})
		srv, err := listen("node", "127.0.0.1:0", n)
		if err != nil {
			t.Fatal(err)
		}
		go srv.serve(ctx)
		return "ws://" + srv.addr()
	}
	eth, sol, arb := node(1), node(101), node(42161)
	cfg := filepath.Join(t.TempDir(), "relaymeter.yaml")
	if err := os.WriteFile(cfg, []byte(`
service: eth
upstream: `+eth+`/
services:
  - id: sol
    protocol: WEBSOCKET_JSONRPC
    upstream: `+sol+`/SECRETPATH
  - id: arb
    protocol: WEBSOCKET_JSONRPC
    upstream: [`+arb+`/, ws://127.0.0.1:1/]
  - id: eth
    protocol: WEBSOCKET_JSONRPC
`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logs := &lockedBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"edge", "ws", "--config", cfg, "--listen", addr,
			"--supplier", "sup", "--kafka", strings.Join(kc.Brokers, ","), "--spool-dir", "", "--edge-id", "routes",
			"--database-url", dbURL, "--log-level", "debug"},
			stdio{in: strings.NewReader(""), out: logs, err: logs})
	}()
	base := "ws://" + addr
	status := func(path string) int {
		_, resp, err := websocket.Dial(ctx, base+path, nil)
		if err == nil || resp == nil {
			return -1
		}
		return resp.StatusCode
	}
	for deadline := time.Now().Add(30 * time.Second); status("/") != http.StatusUnauthorized; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("edge ws never answered:\n%s", logs)
		}
	}
	want := map[string]int{}
	for _, tc := range []struct{ path, service, chain string }{
		{"/v1/" + secret, "eth", `"0x1"`},
		{"/sol/v1/" + secret, "sol", `"0x65"`},
		{"/arb/v1/" + secret, "arb", `"0xa4b1"`},
		{"/sol/v1/" + secret, "sol", `"0x65"`},
	} {
		c, err := ethsim.Dial(ctx, base+tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.service, err)
		}
		got, err := c.Call(ctx, "eth_chainId")
		if err != nil || string(got) != tc.chain {
			t.Fatalf("%s: eth_chainId %s (%v), want %s: not its own upstream", tc.service, got, err, tc.chain)
		}
		c.Close()
		want[tc.service]++
	}
	if code := status("/btc/v1/" + secret); code != http.StatusNotFound {
		t.Fatalf("an unknown service: HTTP %d, want 404", code)
	}
	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("edge ws exited %d:\n%s", code, logs)
		}
	case <-ctx.Done():
		t.Fatal("edge ws did not stop")
	}
	upstreams := map[string]string{"eth": eth, "sol": sol, "arb": arb}
	got := map[string]int{}
	for id, evs := range eventtest.StreamEvents(t, eventtest.ReadTopic(t, kc.Brokers, topicMessages, 4)) {
		op := evs[0].GetOpened()
		if op == nil || op.Application != app.ID || op.ApiKeyId != key.ID || op.UpstreamAddr != upstreams[op.Service] {
			t.Fatalf("stream %s opened %v, want application %s, key %s, the upstream of its service", id, op, app.ID, key.ID)
		}
		got[op.Service]++
	}
	if len(got) != len(want) || got["eth"] != want["eth"] || got["sol"] != want["sol"] || got["arb"] != want["arb"] {
		t.Fatalf("streams by service %v, want %v", got, want)
	}
	out := logs.String()
	if strings.Contains(out, "SECRETPATH") || strings.Contains(out, secret[len(identity.SecretPrefix):]) {
		t.Fatalf("a secret in the logs:\n%s", out)
	}
	if !strings.Contains(out, "/arb/ → "+arb+"/…,ws://127.0.0.1:1/…") || !strings.Contains(out, "/sol/") {
		t.Fatalf("the routes, and the pool of arb, are not logged:\n%s", out)
	}
}

// TestDevRoutes runs `relaymeter dev --config` in-process: a service with
// an upstream is served under its segment next to the default service on
// the built-in node, each stream recording its own service.
func TestDevRoutes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, dbURL := pgtest.DB(t)
	kc := kafkatest.Start(t, kafkatest.Options{Partitions: 4, Topics: []string{topicMessages, topicClaims}})
	n := ethsim.New(ethsim.Config{ChainID: 101, HeadInterval: -1})
	srv, err := listen("node", "127.0.0.1:0", n)
	if err != nil {
		t.Fatal(err)
	}
	go srv.serve(ctx)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "relaymeter.yaml")
	if err := os.WriteFile(cfg, []byte("services:\n  - id: sol\n    protocol: WEBSOCKET_JSONRPC\n    upstream: ws://"+srv.addr()+"/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wsAddr, httpAddr := freeAddr(t), freeAddr(t)
	out := &lockedBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"dev", "--config", cfg, "--data-dir", dir, "--ws-listen", wsAddr, "--http", httpAddr,
			"--database-url", dbURL, "--kafka", strings.Join(kc.Brokers, ","), "--log-level", "warn"},
			stdio{in: strings.NewReader(""), out: out, err: out})
	}()
	var c *ethsim.Client
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err = ethsim.Dial(ctx, "ws://"+wsAddr+"/sol/wallet"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev never served /sol/wallet: %v\n%s", err, out)
		}
	}
	for _, tc := range []struct {
		c     *ethsim.Client
		chain string
	}{{c, `"0x65"`}, {nil, `"0x1"`}} {
		if tc.c == nil {
			if tc.c, err = ethsim.Dial(ctx, "ws://"+wsAddr+"/wallet"); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := tc.c.Call(ctx, "eth_chainId"); err != nil || string(got) != tc.chain {
			t.Fatalf("eth_chainId %s (%v), want %s", got, err, tc.chain)
		}
		tc.c.Close()
	}
	if !strings.Contains(out.String(), "ws://"+wsAddr+"/sol/<application>") {
		t.Errorf("dev does not print the sol route:\n%s", out)
	}
	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("dev exited %d:\n%s", code, out)
		}
	case <-ctx.Done():
		t.Fatal("dev did not stop")
	}
	got := map[string]string{}
	for _, evs := range eventtest.StreamEvents(t, eventtest.ReadTopic(t, kc.Brokers, topicMessages, 4)) {
		if op := evs[0].GetOpened(); op != nil {
			got[op.Service] = op.Application
		}
	}
	if len(got) != 2 || got["sol"] != "wallet" || got["eth"] != "wallet" {
		t.Fatalf("streams by service %v, want sol and eth, both billing wallet", got)
	}
}
