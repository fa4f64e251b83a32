package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/ingest/ws"
)

// dialFrom dials the edge as a client behind a proxy that says the client
// is xff (no header if empty). It returns the connection, or the HTTP
// status and body of the refusal.
func dialFrom(ctx context.Context, url, xff string) (*websocket.Conn, int, []byte, error) {
	h := http.Header{}
	if xff != "" {
		h.Set("X-Forwarded-For", xff)
	}
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		return c, http.StatusSwitchingProtocols, nil, nil
	}
	if resp == nil {
		return nil, 0, nil, err
	}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(resp.Body)
	}
	return nil, resp.StatusCode, body, nil
}

// TestConnectionsPerIP: 1,000 connections from 100 client addresses (named
// by X-Forwarded-For from a trusted loopback proxy), 10 from each, with the
// default limit of 5: exactly 5 of each address are accepted and the other
// 5 refused with HTTP 429 and a JSON-RPC error body before the upgrade.
// Closing connections frees their places.
func TestConnectionsPerIP(t *testing.T) {
	e := setup(t, func(c *ws.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	url := e.url("app")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	accepted := map[string][]*websocket.Conn{}
	refused := map[string]int{}
	var failures []string
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ip := range jobs {
				// The client's own claim first, as a proxy appends to it:
				// only the right-most untrusted address counts.
				c, status, body, err := dialFrom(ctx, url, "198.51.100.7, "+ip)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case c != nil:
					accepted[ip] = append(accepted[ip], c)
				case status == http.StatusTooManyRequests:
					var r struct {
						ID    any
						Error struct{ Code int }
					}
					if json.Unmarshal(body, &r) != nil || r.Error.Code != -32005 || r.ID != nil {
						failures = append(failures, fmt.Sprintf("429 with body %q", body))
					}
					refused[ip]++
				default:
					failures = append(failures, fmt.Sprintf("status %d %s", status, body))
				}
				mu.Unlock()
			}
		}()
	}
	for round := range 10 {
		for i := range 100 {
			_ = round
			jobs <- fmt.Sprintf("10.0.%d.%d", i/50, i%50+1)
		}
	}
	close(jobs)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d dials failed, first: %s", len(failures), failures[0])
	}
	nAccepted, nRefused := 0, 0
	for ip, cs := range accepted {
		nAccepted += len(cs)
		if len(cs) != 5 || refused[ip] != 5 {
			t.Errorf("%s: %d accepted, %d refused; want 5 and 5", ip, len(cs), refused[ip])
		}
	}
	for _, n := range refused {
		nRefused += n
	}
	if nAccepted != 500 || nRefused != 500 || len(accepted) != 100 {
		t.Fatalf("%d accepted from %d addresses, %d refused; want 500 from 100, 500", nAccepted, len(accepted), nRefused)
	}
	if got := e.metric(t, "relaymeter_ws_edge_auth_refused_total", "per_ip"); got != 500 {
		t.Errorf("per_ip refusals counted %v, want 500", got)
	}
	// The accepted connections work, and closing one frees its place.
	ip := "10.0.0.1"
	cs := accepted[ip]
	if got := exchange(t, cs[0], websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 1)[0]; got != `{"jsonrpc":"2.0","id":1,"result":"0x1"}` {
		t.Fatalf("an accepted connection got %s", got)
	}
	cs[0].Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the closed connection's place to free", func() bool {
		c, _, _, err := dialFrom(ctx, url, ip)
		if c != nil {
			cs[0] = c
		}
		return err == nil && c != nil
	})
	if c, status, _, _ := dialFrom(ctx, url, ip); c != nil || status != http.StatusTooManyRequests {
		t.Fatalf("a sixth connection from %s got status %d", ip, status)
	}
	for _, cs := range accepted {
		for _, c := range cs {
			c.CloseNow()
		}
	}
}

// TestConnectionsPerIPUntrustedProxy: X-Forwarded-For from a peer that is
// not a trusted proxy is ignored: every connection counts against the
// peer's own address. A malformed header from a trusted one is refused.
func TestConnectionsPerIPUntrustedProxy(t *testing.T) {
	e := setup(t, func(c *ws.Config) { c.Limits.MaxConnectionsPerIP = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, want := range []int{101, 101, 429, 429} {
		c, status, _, err := dialFrom(ctx, e.url("app"), fmt.Sprintf("10.1.0.%d", i+1))
		if err != nil || status != want {
			t.Fatalf("dial %d: status %d (%v), want %d", i, status, err, want)
		}
		if c != nil {
			defer c.CloseNow()
		}
	}

	e2 := setup(t, func(c *ws.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	for _, xff := range []string{"not-an-address", "10.0.0.1, 10.0.0.2:80, bad"} {
		c, status, _, _ := dialFrom(ctx, e2.url("app"), xff)
		if c != nil || status != http.StatusBadRequest {
			t.Errorf("X-Forwarded-For %q: status %d, want 400", xff, status)
		}
	}
	// A malformed entry left of the one taken is the client's, not read.
	c, status, _, _ := dialFrom(ctx, e2.url("app"), "garbage, [2001:db8::1]:4711")
	if c == nil {
		t.Fatalf("X-Forwarded-For with the client's garbage first: status %d", status)
	}
	c.CloseNow()
}
