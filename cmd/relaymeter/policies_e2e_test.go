package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// TestPoliciesEndToEnd starts dev with a YAML file that defines one
// WebSocket service per policy, each routed to its own path of one edge,
// sends the same calls through each, and checks through GraphQL that each
// service's relays are exactly what its policy makes of the bytes that
// crossed. (The mining policies need the mining edges, issue #11; their
// table tests are in meter/policy.)
func TestPoliciesEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node := ethsim.New(ethsim.Config{HeadInterval: -1})
	up, err := listen("node", "127.0.0.1:0", node)
	if err != nil {
		t.Fatal(err)
	}
	go up.serve(ctx)
	upstream := "ws://" + up.addr() + "/"

	// Three calls; the second and third carry newlines (JSON whitespace).
	reqs := []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`,
		"{\"jsonrpc\":\"2.0\",\n\"id\":2,\n\"method\":\"eth_blockNumber\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"eth_chainId\"}\n",
		// Past the edge's default capture of 1024 bytes: the delimiter
		// and expr services' edges record payloads whole.
		`{"jsonrpc":"2.0","id":4,"method":"eth_chainId"}` + strings.Repeat(" ", 2000) + "\n\n",
	}
	blocks := 0 // bytes, block 10, requests only
	for _, r := range reqs {
		blocks += (len(r) + 9) / 10
	}
	services := []struct {
		id, policy, params string
		want               int64
	}{
		{"msg", "message", `{}`, 8},
		{"byt", "bytes", `{"block": 10, "count": "wire", "direction": "request"}`, int64(blocks)},
		{"del", "delimiter", `{"delimiter": "\n", "direction": "request"}`, 5},
		{"mth", "method", `{"default": 0, "methods": {"eth_chainId": 5, "eth_blockNumber": 7}}`, 5 + 7 + 5 + 5},
		{"exp", "expr", `{"expression": "direction == \"UPSTREAM_TO_CLIENT\" ? 1 : (method == \"eth_chainId\" ? 3 : 0)"}`, 3 + 0 + 3 + 3 + 4},
	}
	var cfg strings.Builder
	cfg.WriteString("services:\n")
	for _, s := range services {
		fmt.Fprintf(&cfg, "  - id: %s\n    protocol: WEBSOCKET_JSONRPC\n    policy: %s\n    params: %s\n    upstream: %s\n",
			s.id, s.policy, s.params, upstream)
	}
	path := filepath.Join(t.TempDir(), "relaymeter.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	os.Chmod(filepath.Dir(dataDir), 0o755)
	os.Chmod(dataDir, 0o755)
	dev := startDev(t, buildBinary(t), dataDir, "--config", path)

	for _, s := range services {
		c, _, err := websocket.Dial(ctx, dev.edge+"/"+s.id+"/v1/"+dev.demoKey, nil)
		if err != nil {
			t.Fatalf("service %s: %v", s.id, err)
		}
		for _, r := range reqs {
			if err := c.Write(ctx, websocket.MessageText, []byte(r)); err != nil {
				t.Fatal(err)
			}
			if _, answer, err := c.Read(ctx); err != nil || !strings.Contains(string(answer), `"result"`) {
				t.Fatalf("service %s: answer %s, %v", s.id, answer, err)
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
	for _, s := range services {
		u := waitUsage(t, ctx, dev.api, "kill-test-key", `{service:"`+s.id+`"}`, 8)
		if u.Messages != 8 || u.Relays != s.want {
			t.Errorf("service %s (%s %s): %d messages, %d relays; want 8 and %d", s.id, s.policy, s.params, u.Messages, u.Relays, s.want)
		}
	}
}
