package graphql

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/ledger"
)

const appKey = "rmk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeKeys knows one application key, which can be revoked.
type fakeKeys struct{ revoked atomic.Bool }

func (k *fakeKeys) Resolve(_ context.Context, secret string) (identity.Principal, error) {
	if secret != appKey {
		return identity.Principal{}, &identity.RefusedError{Reason: "unknown"}
	}
	if k.revoked.Load() {
		return identity.Principal{}, &identity.RefusedError{Reason: "revoked", KeyID: "key_app"}
	}
	return identity.Principal{KeyID: "key_app", Role: identity.RoleApplication, Application: "app1"}, nil
}

// liveServer serves the API on loopback over a database whose usage
// totals are 111 messages, 222 relays, 333 units and 444 bytes.
func liveServer(t *testing.T, cfg Config) (*httptest.Server, *pgxpool.Pool) {
	t.Helper()
	pool, _ := pgtest.DB(t)
	addUsage(t, pool, t0, "eth", "app1", 1, 2, 3, 4)
	addUsage(t, pool, t0.Add(time.Minute), "pool", "app2", 10, 20, 30, 40)
	addUsage(t, pool, t0.Add(time.Hour), "eth", "app2", 100, 200, 300, 400)
	cfg.Store = ledger.New(pool)
	cfg.AdminKey = adminKey
	if cfg.Live.PollInterval == 0 {
		cfg.Live.PollInterval = 50 * time.Millisecond
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, pool
}

// addUsage adds a usage rollup, as the meter's batch commit does.
func addUsage(t *testing.T, pool *pgxpool.Pool, minute time.Time, service, app string, messages, relays, units, bytes int64) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `INSERT INTO usage_minutes
		(minute, protocol, service, application, supplier, messages, relays, units, bytes)
		VALUES ($1, 'WEBSOCKET_JSONRPC', $2, $3, 'supA', $4, $5, $6, $7)
		ON CONFLICT (minute, protocol, service, application, supplier) DO UPDATE SET
		messages = usage_minutes.messages + excluded.messages, relays = usage_minutes.relays + excluded.relays,
		units = usage_minutes.units + excluded.units, bytes = usage_minutes.bytes + excluded.bytes`,
		minute, service, app, messages, relays, units, bytes)
	if err != nil {
		t.Fatalf("add usage: %v", err)
	}
}

// wsClient is a graphql-transport-ws client for tests.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

type wsMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

func dial(t *testing.T, srv *httptest.Server, header http.Header, protocols ...string) *wsClient {
	t.Helper()
	if protocols == nil {
		protocols = []string{LiveProtocol}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: protocols, HTTPHeader: header})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t, c}
}

func (w *wsClient) sendRaw(s string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		w.t.Fatalf("write %s: %v", s, err)
	}
}

func (w *wsClient) send(m map[string]any) {
	w.t.Helper()
	b, _ := json.Marshal(m)
	w.sendRaw(string(b))
}

// read returns the next message, or the error that ended the socket.
func (w *wsClient) read(timeout time.Duration) (wsMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, data, err := w.c.Read(ctx)
	if err != nil {
		return wsMessage{}, err
	}
	var m wsMessage
	if err := json.Unmarshal(data, &m); err != nil {
		w.t.Fatalf("server sent %q: %v", data, err)
	}
	return m, nil
}

// expect reads until a message of type typ (for id, if given), failing on
// anything else but next messages of other operations.
func (w *wsClient) expect(typ, id string) wsMessage {
	w.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := w.read(time.Until(deadline))
		if err != nil {
			w.t.Fatalf("waiting for %s %s: %v", typ, id, err)
		}
		if m.Type == typ && (id == "" || m.ID == id) {
			return m
		}
		if m.Type != "next" || m.ID == id {
			w.t.Fatalf("waiting for %s %s: got %s %s %s", typ, id, m.Type, m.ID, m.Payload)
		}
	}
}

// expectClose reads until the server closes the socket and checks the code.
func (w *wsClient) expectClose(code websocket.StatusCode) {
	w.t.Helper()
	for {
		m, err := w.read(5 * time.Second)
		if err != nil {
			if got := websocket.CloseStatus(err); got != code {
				w.t.Fatalf("socket ended with %v (%v), want close %d", got, err, code)
			}
			return
		}
		if m.Type != "next" && m.Type != "pong" {
			w.t.Fatalf("waiting for close %d: got %s %s", code, m.Type, m.Payload)
		}
	}
}

func (w *wsClient) init(payload map[string]any) {
	w.t.Helper()
	m := map[string]any{"type": "connection_init"}
	if payload != nil {
		m["payload"] = payload
	}
	w.send(m)
	w.expect("connection_ack", "")
}

const liveQuery = `subscription($f: UsageFilter) { usageUpdated(filter: $f) { messages relays units bytes } }`

func (w *wsClient) subscribe(id, query string, vars map[string]any) {
	w.t.Helper()
	w.send(map[string]any{"type": "subscribe", "id": id, "payload": map[string]any{"query": query, "variables": vars}})
}

type liveUsage struct{ Messages, Relays, Units, Bytes int64 }

func nextUsage(t *testing.T, m wsMessage) liveUsage {
	t.Helper()
	var p struct {
		Data struct {
			UsageUpdated liveUsage `json:"usageUpdated"`
		} `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) != 0 {
		t.Fatalf("next payload %s: %v %+v", m.Payload, err, p.Errors)
	}
	return p.Data.UsageUpdated
}

func TestLiveUsageUpdated(t *testing.T) {
	srv, pool := liveServer(t, Config{})
	w := dial(t, srv, nil)
	w.init(map[string]any{"Authorization": "Bearer " + adminKey})

	w.send(map[string]any{"type": "ping", "payload": map[string]any{"n": 1}})
	w.expect("pong", "")

	w.subscribe("u1", liveQuery, nil)
	if got, want := nextUsage(t, w.expect("next", "u1")), (liveUsage{111, 222, 333, 444}); got != want {
		t.Fatalf("first totals %+v, want %+v", got, want)
	}
	w.subscribe("u2", liveQuery, map[string]any{"f": map[string]any{"service": "pool"}})
	if got, want := nextUsage(t, w.expect("next", "u2")), (liveUsage{10, 20, 30, 40}); got != want {
		t.Fatalf("pool totals %+v, want %+v", got, want)
	}

	// A batch commits: the totals come without asking.
	committed := time.Now()
	addUsage(t, pool, t0.Add(2*time.Hour), "eth", "app1", 1000, 2000, 3000, 4000)
	if got, want := nextUsage(t, w.expect("next", "u1")), (liveUsage{1111, 2222, 3333, 4444}); got != want {
		t.Fatalf("totals after a commit %+v, want %+v", got, want)
	}
	t.Logf("commit to update: %v (poll interval 50 ms)", time.Since(committed))

	// complete stops u1; u2, which the commit below touches, goes on, so
	// a next for u1 would come before u2's.
	w.send(map[string]any{"type": "complete", "id": "u1"})
	time.Sleep(150 * time.Millisecond) // let the server take it before the commit
	addUsage(t, pool, t0.Add(3*time.Hour), "pool", "app2", 5, 5, 5, 5)
	if got, want := nextUsage(t, w.expect("next", "u2")), (liveUsage{15, 25, 35, 45}); got != want {
		t.Fatalf("pool totals after a commit %+v, want %+v", got, want)
	}
	addUsage(t, pool, t0.Add(4*time.Hour), "eth", "app1", 1, 1, 1, 1)
	time.Sleep(500 * time.Millisecond) // ten polls
	w.send(map[string]any{"type": "ping"})
	for {
		m, err := w.read(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == "pong" {
			break
		}
		if m.ID == "u1" {
			t.Fatalf("after complete: got %s %s %s", m.Type, m.ID, m.Payload)
		}
	}

	// The id of a completed operation may be used again.
	w.subscribe("u1", liveQuery, nil)
	if got := nextUsage(t, w.expect("next", "u1")); got.Messages != 1117 {
		t.Fatalf("resubscribed totals %+v, want 1117 messages", got)
	}
}

func TestLiveOperations(t *testing.T) {
	srv, _ := liveServer(t, Config{})
	w := dial(t, srv, http.Header{"Authorization": {"Bearer " + adminKey}})
	w.init(nil) // the upgrade request's key

	// A query runs once: next, then complete.
	w.subscribe("q", `{ usage { messages } }`, nil)
	if m := w.expect("next", "q"); !strings.Contains(string(m.Payload), `"messages":111`) {
		t.Errorf("query result %s", m.Payload)
	}
	w.expect("complete", "q")

	// An invalid operation is an error message, and no complete.
	w.subscribe("bad", `subscription { usageUpdated { nope } }`, nil)
	m := w.expect("error", "bad")
	var errs []gqlError
	if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) == 0 || errs[0].Extensions.Code != CodeValidationFailed {
		t.Errorf("error payload %s: %v", m.Payload, err)
	}
	// A bad filter is the resolver's error, with its code.
	w.subscribe("bad2", liveQuery, map[string]any{"f": map[string]any{"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}})
	m = w.expect("error", "bad2")
	if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) == 0 || errs[0].Extensions.Code != CodeBadUserInput {
		t.Errorf("bad filter: error payload %s: %v", m.Payload, err)
	}
	w.send(map[string]any{"type": "ping"})
	w.expect("pong", "")

	// Completing an unknown id is no error.
	w.send(map[string]any{"type": "complete", "id": "never"})
	w.send(map[string]any{"type": "ping"})
	w.expect("pong", "")
}

func TestLiveApplicationKey(t *testing.T) {
	keys := &fakeKeys{}
	srv, _ := liveServer(t, Config{Keys: keys, Live: LiveConfig{KeyRecheck: 50 * time.Millisecond}})
	w := dial(t, srv, nil)
	w.init(map[string]any{"authorization": "Bearer " + appKey})
	w.subscribe("u", liveQuery, nil)
	w.expect("next", "u")

	// A revoked key's subscriptions end.
	keys.revoked.Store(true)
	start := time.Now()
	w.expectClose(closeUnauthorized)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("revoked key let go after %v", d)
	}
	w2 := dial(t, srv, nil)
	w2.send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + appKey}})
	w2.expectClose(closeUnauthorized)
}

func TestLiveUnauthenticated(t *testing.T) {
	srv, _ := liveServer(t, Config{Keys: &fakeKeys{}})
	for name, init := range map[string]map[string]any{
		"no key":      {"type": "connection_init"},
		"unknown key": {"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer rmk_nope"}},
		"empty key":   {"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer "}},
	} {
		t.Run(name, func(t *testing.T) {
			w := dial(t, srv, nil)
			w.send(init)
			w.expectClose(closeUnauthorized)
		})
	}
	t.Run("subscribe before connection_init", func(t *testing.T) {
		w := dial(t, srv, http.Header{"Authorization": {"Bearer " + adminKey}})
		w.subscribe("u", liveQuery, nil)
		w.expectClose(closeUnauthorized)
	})
	t.Run("bad upgrade key", func(t *testing.T) {
		w := dial(t, srv, http.Header{"Authorization": {"Bearer wrong"}})
		w.send(map[string]any{"type": "connection_init"})
		w.expectClose(closeUnauthorized)
	})
}

func TestLiveProtocolErrors(t *testing.T) {
	srv, _ := liveServer(t, Config{Live: LiveConfig{InitTimeout: 300 * time.Millisecond, MaxMessageBytes: 4096}})
	base := runtime.NumGoroutine()
	auth := map[string]any{"Authorization": "Bearer " + adminKey}
	for _, tc := range []struct {
		name     string
		acked    bool
		messages []string
		code     websocket.StatusCode
	}{
		{"not JSON", false, []string{`{"type":`}, closeBadRequest},
		{"an array", false, []string{`[]`}, closeBadRequest},
		{"two values", false, []string{`{"type":"ping"} {"type":"ping"}`}, closeBadRequest},
		{"no type", false, []string{`{"id":"1"}`}, closeBadRequest},
		{"unknown type", false, []string{`{"type":"start","id":"1"}`}, closeBadRequest},
		{"server's type", true, []string{`{"type":"next","id":"1","payload":{}}`}, closeBadRequest},
		{"type not a string", false, []string{`{"type":7}`}, closeBadRequest},
		{"init payload not an object", false, []string{`{"type":"connection_init","payload":"Bearer x"}`}, closeBadRequest},
		{"Authorization not a string", false, []string{`{"type":"connection_init","payload":{"Authorization":1}}`}, closeBadRequest},
		{"Authorization not Bearer", false, []string{`{"type":"connection_init","payload":{"Authorization":"Basic eA=="}}`}, closeBadRequest},
		{"subscribe without id", true, []string{`{"type":"subscribe","payload":{"query":"{ usage { messages } }"}}`}, closeBadRequest},
		{"subscribe with a long id", true, []string{`{"type":"subscribe","id":"` + strings.Repeat("x", 129) + `","payload":{"query":"{ usage { messages } }"}}`}, closeBadRequest},
		{"subscribe without payload", true, []string{`{"type":"subscribe","id":"1"}`}, closeBadRequest},
		{"subscribe without query", true, []string{`{"type":"subscribe","id":"1","payload":{}}`}, closeBadRequest},
		{"subscribe variables not an object", true, []string{`{"type":"subscribe","id":"1","payload":{"query":"{ usage { messages } }","variables":[1]}}`}, closeBadRequest},
		{"complete without id", true, []string{`{"type":"complete"}`}, closeBadRequest},
		{"ping payload not an object", true, []string{`{"type":"ping","payload":3}`}, closeBadRequest},
		{"second connection_init", true, []string{`{"type":"connection_init"}`}, closeTooManyInits},
		{"an id in use", true, []string{
			`{"type":"subscribe","id":"1","payload":{"query":"subscription { usageUpdated { messages } }"}}`,
			`{"type":"subscribe","id":"1","payload":{"query":"subscription { usageUpdated { messages } }"}}`,
		}, closeSubscriberExists},
		{"no connection_init", false, nil, closeInitTimeout},
		{"a message over the limit", false, []string{`{"type":"ping","payload":{"x":"` + strings.Repeat("x", 5000) + `"}}`}, websocket.StatusMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := dial(t, srv, nil)
			if tc.acked {
				w.init(auth)
			}
			for _, m := range tc.messages {
				w.sendRaw(m)
			}
			w.expectClose(tc.code)
			w.c.CloseNow()
		})
	}
	t.Run("binary frame", func(t *testing.T) {
		w := dial(t, srv, nil)
		w.c.Write(context.Background(), websocket.MessageBinary, []byte(`{"type":"ping"}`))
		w.expectClose(closeBadRequest)
		w.c.CloseNow()
	})
	t.Run("no subprotocol", func(t *testing.T) {
		w := dial(t, srv, nil, "graphql-ws")
		w.expectClose(closeBadSubprotocol)
		w.c.CloseNow()
	})
	// Every session has let go of its goroutines.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLiveLimits(t *testing.T) {
	srv, _ := liveServer(t, Config{Keys: &fakeKeys{}, Live: LiveConfig{MaxSubscriptionsPerConn: 2, MaxConnsPerKey: 1}})
	w := dial(t, srv, nil)
	w.init(map[string]any{"Authorization": "Bearer " + appKey})
	w.subscribe("a", liveQuery, nil)
	w.expect("next", "a")
	w.subscribe("b", liveQuery, nil)
	w.expect("next", "b")
	w.subscribe("c", liveQuery, nil)
	m := w.expect("error", "c")
	if !strings.Contains(string(m.Payload), CodeTooManySubscriptions) {
		t.Errorf("third subscription: %s", m.Payload)
	}
	// Completing one frees its slot.
	w.send(map[string]any{"type": "complete", "id": "a"})
	time.Sleep(100 * time.Millisecond)
	w.subscribe("c", liveQuery, nil)
	w.expect("next", "c")

	// A second connection of the same key is refused; another key's is not.
	w2 := dial(t, srv, nil)
	w2.send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + appKey}})
	w2.expectClose(closeForbidden)
	w3 := dial(t, srv, nil)
	w3.init(map[string]any{"Authorization": "Bearer " + adminKey})

	// Once the first goes, its key may connect again.
	w.c.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		w4 := dial(t, srv, nil)
		w4.send(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + appKey}})
		m, err := w4.read(5 * time.Second)
		if err == nil && m.Type == "connection_ack" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key cannot connect again: %v %v", m, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestUsagePageHeaders(t *testing.T) {
	srv, _ := liveServer(t, Config{})
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/usage", "text/html", `<script src="/usage/usage.js"></script>`},
		{"/usage/usage.js", "text/javascript", "usageUpdated"},
		{"/usage/usage.css", "text/css", "#totals"},
	} {
		res, err := srv.Client().Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, res)
		csp := res.Header.Get("Content-Security-Policy")
		switch {
		case res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), tc.ctype):
			t.Errorf("%s: %d %s", tc.path, res.StatusCode, res.Header.Get("Content-Type"))
		case !strings.Contains(body, tc.contains):
			t.Errorf("%s: no %q", tc.path, tc.contains)
		case !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "default-src 'none'"):
			t.Errorf("%s: CSP %q", tc.path, csp)
		case res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "no-referrer":
			t.Errorf("%s: headers %v", tc.path, res.Header)
		}
		if tc.path == "/usage" {
			if strings.Count(body, "<script") != strings.Count(body, "<script src=") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
				t.Errorf("the page has inline script or loads from elsewhere: %s", body)
			}
		}
	}
	for _, p := range []string{"/usage/nope.js", "/usage/index.txt", "/usage/..%2fhandler.go"} {
		res, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, res.StatusCode)
		}
	}
	if got := usageCSP("evil.example; script-src *"); strings.Contains(got, "evil") {
		t.Errorf("CSP takes a hostile Host: %s", got)
	}
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

func TestSamePrincipal(t *testing.T) {
	at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	p := identity.Principal{KeyID: "key_a", Role: identity.RoleApplication, Application: "app1", ExpiresAt: at}
	q := p
	q.ExpiresAt = at.In(time.FixedZone("X", 3600)) // the same instant, as a registry read may give it
	if !samePrincipal(p, q) {
		t.Error("the same grant in another location differs")
	}
	q.Application = "app2"
	if samePrincipal(p, q) {
		t.Error("another application is the same grant")
	}
}

// TestLiveRevokedRegistryKey revokes a real key of the registry behind a
// real cache: the connection ends within the cache's TTL and a recheck.
func TestLiveRevokedRegistryKey(t *testing.T) {
	pool, _ := pgtest.DB(t)
	ctx := context.Background()
	reg := identity.NewRegistry(pool)
	app, err := reg.CreateApplication(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	secret, key, err := reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: app.ID, Name: "live"})
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 300 * time.Millisecond
	h, err := NewHandler(Config{Store: ledger.New(pool), Keys: identity.NewCache(reg, identity.CacheConfig{TTL: ttl}),
		Live: LiveConfig{PollInterval: 50 * time.Millisecond, KeyRecheck: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	w := dial(t, srv, nil)
	w.init(map[string]any{"Authorization": "Bearer " + secret})
	w.subscribe("u", liveQuery, nil)
	w.expect("next", "u")
	time.Sleep(2 * ttl) // the key still works past a refresh of the cache
	w.send(map[string]any{"type": "ping"})
	w.expect("pong", "")

	if _, err := reg.RevokeKey(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w.expectClose(closeUnauthorized)
	if d := time.Since(start); d > ttl+time.Second {
		t.Errorf("revoked key let go after %v; TTL %v", d, ttl)
	}
}

// TestLiveRateLimited: a subscribe spends a token of its key's rate limit
// as a query does; over it, the operation gets an error RATE_LIMITED and
// the connection stays.
func TestLiveRateLimited(t *testing.T) {
	srv, _ := liveServer(t, Config{Keys: &fakeKeys{}, RateLimit: 0.001, RateBurst: 2})
	w := dial(t, srv, nil)
	w.init(map[string]any{"Authorization": "Bearer " + appKey})
	w.subscribe("a", liveQuery, nil)
	w.expect("next", "a")
	w.subscribe("b", liveQuery, nil)
	w.expect("next", "b")
	w.subscribe("c", liveQuery, nil)
	if m := w.expect("error", "c"); !strings.Contains(string(m.Payload), CodeRateLimited) {
		t.Errorf("third subscribe over a burst of 2: %s", m.Payload)
	}
	w.send(map[string]any{"type": "ping"})
	w.expect("pong", "")
}
