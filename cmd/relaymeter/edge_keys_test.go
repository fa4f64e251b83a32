package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/internal/ethsim"
	"github.com/relaymeter/relaymeter/internal/eventtest"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
)

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEdgeNeedsKeysOrOpenAccess: edge ws without a registry to resolve keys
// in refuses to start, unless told its clients are trusted.
func TestEdgeNeedsKeysOrOpenAccess(t *testing.T) {
	code, _, stderr := cli(t, "edge", "ws", "--upstream", "ws://127.0.0.1:1/", "--supplier", "sup", "--kafka", "127.0.0.1:1")
	if code == 0 || !strings.Contains(stderr, "--database-url") {
		t.Fatalf("edge ws without --database-url: exit %d, %s", code, stderr)
	}
	code, _, stderr = cli(t, "edge", "ws", "--upstream", "ws://127.0.0.1:1/", "--supplier", "sup", "--kafka", "127.0.0.1:1",
		"--database-url", "postgres://127.0.0.1:1/x", "--key-cache-ttl", "0s")
	if code == 0 || !strings.Contains(stderr, "--key-cache-ttl") {
		t.Fatalf("edge ws --key-cache-ttl 0s: exit %d, %s", code, stderr)
	}
}

// TestEdgeCommandKeys runs `relaymeter edge ws --database-url` in-process:
// an application key opens a stream billed to its application and key,
// anything else is refused with 401, a revoked key stops within
// --key-cache-ttl, and no secret reaches the logs or the events.
func TestEdgeCommandKeys(t *testing.T) {
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
	admin, _, err := ids.CreateKey(ctx, identity.NewKey{Role: identity.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	kc := kafkatest.Start(t, kafkatest.Options{Partitions: 4, Topics: []string{topicMessages}})
	node := ethsim.New(ethsim.Config{HeadInterval: -1})
	up, err := listen("node", "127.0.0.1:0", node)
	if err != nil {
		t.Fatal(err)
	}
	go up.serve(ctx)

	addr := freeAddr(t)
	const ttl = 200 * time.Millisecond
	logs := &lockedBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"edge", "ws", "--listen", addr, "--upstream", "ws://" + up.addr() + "/",
			"--supplier", "sup", "--kafka", strings.Join(kc.Brokers, ","), "--spool-dir", "", "--edge-id", "keys",
			"--database-url", dbURL, "--key-cache-ttl", ttl.String(), "--log-level", "debug"},
			stdio{in: strings.NewReader(""), out: logs, err: logs})
	}()
	base := "ws://" + addr
	dial := func(path string) (*ethsim.Client, int) {
		t.Helper()
		c, err := ethsim.Dial(ctx, base+path)
		if err == nil {
			return c, 0
		}
		_, resp, _ := websocket.Dial(ctx, base+path, nil)
		if resp == nil {
			return nil, -1
		}
		return nil, resp.StatusCode
	}
	// Wait for the edge to listen.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, code := dial("/v1/" + admin); code == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge ws never answered:\n%s", logs)
		}
	}
	call := func(c *ethsim.Client) {
		t.Helper()
		if _, err := c.Call(ctx, "eth_chainId"); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	c, code := dial("/v1/" + secret)
	if c == nil {
		t.Fatalf("an application key refused: HTTP %d", code)
	}
	call(c)
	for _, path := range []string{"/" + app.ID, "/v1/" + admin, "/v1/" + secret + "/x", "/v1/rmk_" + strings.Repeat("0", 64)} {
		if _, code := dial(path); code != http.StatusUnauthorized {
			t.Errorf("%s…: HTTP %d, want 401", path[:min(len(path), 12)], code)
		}
	}
	if _, err := ids.RevokeKey(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		c, code := dial("/v1/" + secret)
		if c == nil {
			if code != http.StatusUnauthorized {
				t.Fatalf("a revoked key: HTTP %d, want 401", code)
			}
			break
		}
		call(c)
		if time.Since(revoked) > ttl+time.Second {
			t.Fatalf("a revoked key still opens streams %v later (--key-cache-ttl %v)", time.Since(revoked), ttl)
		}
		time.Sleep(20 * time.Millisecond)
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
	streams := eventtest.StreamEvents(t, eventtest.ReadTopic(t, kc.Brokers, topicMessages, 4))
	if len(streams) == 0 {
		t.Fatal("no stream recorded")
	}
	for id, evs := range streams {
		op := evs[0].GetOpened()
		if op == nil || op.Application != app.ID || op.ApiKeyId != key.ID {
			t.Fatalf("stream %s opened %v, want application %s, key %s", id, op, app.ID, key.ID)
		}
	}
	out := logs.String()
	for _, s := range []string{secret, admin} {
		if strings.Contains(out, s[len(identity.SecretPrefix):]) {
			t.Fatalf("a secret in the logs:\n%s", out)
		}
	}
	if !strings.Contains(out, "reason=revoked") || !strings.Contains(out, "key="+key.ID) {
		t.Fatalf("the revoked key's refusal is not logged by its id:\n%s", out)
	}
}
