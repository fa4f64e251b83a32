package ws_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/ingest/ws"
	"github.com/relaymeter/relaymeter/internal/pgtest"
)

// countingRecorder counts the streams the edge opens.
type countingRecorder struct {
	ws.Recorder
	opens atomic.Int64
}

func (c *countingRecorder) Open(ctx context.Context, o *event.StreamOpened) (*record.Stream, error) {
	c.opens.Add(1)
	return c.Recorder.Open(ctx, o)
}

// keyed is an edge that resolves keys through an identity.Cache over a
// real registry, in front of its own upstream whose handshakes it counts.
type keyed struct {
	*env
	pool  *pgxpool.Pool
	reg   *identity.Registry
	rec   *countingRecorder
	cache *identity.Cache
	node  *upstream
	upURL string // the edge's default upstream, counting dials before node
	dials atomic.Int64

	// Fixtures: secrets and their keys.
	app, other   identity.Application
	key, otherK  string // application keys of app and other
	appKey       identity.Key
	supKey       string // a supplier key
	supKeyID     string
	adminKey     string
	disabledKey  string // the key of a disabled application
	disabledKeID string
}

func setupKeys(t testing.TB, cc identity.CacheConfig, openAccess bool, mods ...func(*ws.Config)) *keyed {
	t.Helper()
	ctx := context.Background()
	k := &keyed{}
	k.pool, _ = pgtest.DB(t)
	k.reg = identity.NewRegistry(k.pool)
	k.node = startUpstream(t)
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.dials.Add(1)
		k.node.node.ServeHTTP(w, r)
	}))
	t.Cleanup(counting.Close)

	var err error
	mk := func(role identity.Role, app, sup string) (string, identity.Key) {
		secret, key, err := k.reg.CreateKey(ctx, identity.NewKey{Role: role, Application: app, Supplier: sup, Name: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return secret, key
	}
	if k.app, err = k.reg.CreateApplication(ctx, "wallet"); err != nil {
		t.Fatal(err)
	}
	if k.other, err = k.reg.CreateApplication(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	off, err := k.reg.CreateApplication(ctx, "switched off")
	if err != nil {
		t.Fatal(err)
	}
	sup, err := k.reg.CreateSupplier(ctx, "node runner")
	if err != nil {
		t.Fatal(err)
	}
	k.key, k.appKey = mk(identity.RoleApplication, k.app.ID, "")
	k.otherK, _ = mk(identity.RoleApplication, k.other.ID, "")
	var sk, dk identity.Key
	k.supKey, sk = mk(identity.RoleSupplier, "", sup.ID)
	k.adminKey, _ = mk(identity.RoleAdmin, "", "")
	k.disabledKey, dk = mk(identity.RoleApplication, off.ID, "")
	k.supKeyID, k.disabledKeID = sk.ID, dk.ID
	if _, err := k.reg.SetApplicationDisabled(ctx, off.ID, true); err != nil {
		t.Fatal(err)
	}

	k.cache = identity.NewCache(k.reg, cc)
	k.env = setup(t, func(c *ws.Config) {
		k.rec = &countingRecorder{Recorder: c.Recorder}
		c.Recorder, c.Keys, c.OpenAccess = k.rec, k.cache, openAccess
		c.Upstream = "ws" + strings.TrimPrefix(counting.URL, "http")
		k.upURL = c.Upstream
		for _, mod := range mods {
			mod(c)
		}
	})
	return k
}

// secrets are every key the fixtures made.
func (k *keyed) secrets() []string {
	return []string{k.key, k.otherK, k.supKey, k.adminKey, k.disabledKey}
}

func (k *keyed) base() string { return "ws" + strings.TrimPrefix(k.srv.URL, "http") }

// try opens a connection at path with header.
func (k *keyed) try(path string, header http.Header) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return websocket.Dial(ctx, k.base()+path, &websocket.DialOptions{HTTPHeader: header})
}

// use makes one call on c, closes it, and waits for the upstream side to
// end.
func (k *keyed) use(t *testing.T, c *websocket.Conn) {
	t.Helper()
	got := exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 1)
	if !strings.Contains(got[0], `"result"`) {
		t.Fatalf("eth_chainId answered %s", got[0])
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	k.node.closed(t)
}

// refusedWith checks resp is a refusal with status and a JSON-RPC error
// body of code, and returns the body.
func refusedWith(t *testing.T, resp *http.Response, err error, status, code int) []byte {
	t.Helper()
	if err == nil || resp == nil {
		t.Fatalf("connected (err %v), want HTTP %d", err, status)
	}
	if resp.StatusCode != status {
		t.Fatalf("HTTP %d, want %d", resp.StatusCode, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
	}
	b, _ := io.ReadAll(resp.Body)
	var body struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &body); err != nil || body.JSONRPC != "2.0" || string(body.ID) != "null" ||
		body.Error == nil || body.Error.Code != code || body.Error.Message == "" {
		t.Fatalf("body %q (%v), want a JSON-RPC error %d", b, err, code)
	}
	return b
}

// noSecrets fails t if any secret, or its hex part, is in the logs or in
// the recorded events.
func (k *keyed) noSecrets(t *testing.T, events [][]byte) {
	t.Helper()
	logs := k.logs.String()
	for _, s := range k.secrets() {
		hexPart := s[len(identity.SecretPrefix):]
		if strings.Contains(logs, hexPart) {
			t.Fatalf("the logs hold a secret:\n%s", logs)
		}
		for _, ev := range events {
			if bytes.Contains(ev, []byte(hexPart)) {
				t.Fatalf("an event holds a secret: %q", ev)
			}
		}
	}
}

func bearerHeader(v ...string) http.Header { return http.Header{"Authorization": v} }

// TestKeyTricks: whatever a client does to its path and headers, a stream
// bills the application of the key it presents, or is refused with 401
// before the upstream is dialled and before anything is recorded.
func TestKeyTricks(t *testing.T) {
	k := setupKeys(t, identity.CacheConfig{}, false)
	K, K2 := k.key, k.otherK
	unknown := "rmk_" + strings.Repeat("0", 64)
	type trick struct {
		name   string
		path   string
		header http.Header
		reason string // "" accepted
	}
	tricks := []trick{
		{"path key", "/v1/" + K, nil, ""},
		{"path key, query names another application", "/v1/" + K + "?app=" + k.other.ID, nil, ""},
		{"path key, query names another key", "/v1/" + K + "?key=" + K2, nil, ""},
		{"path key and the same header key", "/v1/" + K, bearerHeader("Bearer " + K), ""},
		{"header key at /", "/", bearerHeader("Bearer " + K), ""},
		{"header key at /v1, lower-case scheme", "/v1", bearerHeader("bearer " + K), ""},
		{"header key at /v1/, upper-case scheme", "/v1/", bearerHeader("BEARER " + K), ""},
		{"header key, two spaces", "/", bearerHeader("Bearer  " + K), ""},

		{"no key", "/", nil, "missing"},
		{"application id as the path", "/" + k.other.ID, nil, "missing"},
		{"application id under /v1", "/v1/" + k.other.ID, nil, "malformed"},
		{"double slash before v1", "//v1/" + K, nil, "missing"},
		{"double slash after v1", "/v1//" + K, nil, "malformed"},
		{"dot segment", "/v1/./" + K, nil, "malformed"},
		{"dot-dot segment", "/x/../v1/" + K, nil, "missing"},
		{"upper-case V1", "/V1/" + K, nil, "missing"},
		{"percent-encoded key", "/v1/%72" + K[1:], nil, "malformed"},
		{"percent-encoded v", "/%761/" + K, nil, "missing"},
		{"encoded slash after key", "/v1/" + K + "%2F" + k.other.ID, nil, "malformed"},
		{"extra segment", "/v1/" + K + "/" + k.other.ID, nil, "malformed"},
		{"trailing slash", "/v1/" + K + "/", nil, "malformed"},
		{"semicolon", "/v1/" + K + ";app=x", nil, "malformed"},
		{"NUL after key", "/v1/" + K + "%00", nil, "malformed"},
		{"upper-case hex", "/v1/rmk_" + strings.ToUpper(K[4:]), nil, "malformed"},
		{"key too long", "/v1/" + K + "0", nil, "malformed"},
		{"not a key", "/v1/hello", nil, "malformed"},
		{"unknown key", "/v1/" + unknown, nil, "unknown"},
		{"supplier key", "/v1/" + k.supKey, nil, "role"},
		{"admin key", "/v1/" + k.adminKey, nil, "role"},
		{"supplier key in the header", "/", bearerHeader("Bearer " + k.supKey), "role"},
		{"disabled application", "/v1/" + k.disabledKey, nil, "disabled"},
		{"header names another key", "/v1/" + K, bearerHeader("Bearer " + K2), "mismatch"},
		{"path names another key", "/v1/" + K2, bearerHeader("Bearer " + K), "mismatch"},
		{"header beside an application path", "/" + k.other.ID, bearerHeader("Bearer " + K), "malformed"},
		{"two Authorization headers", "/", bearerHeader("Bearer "+K, "Bearer "+K), "malformed"},
		{"Basic scheme", "/", bearerHeader("Basic " + K), "malformed"},
		{"no space after Bearer", "/", bearerHeader("Bearer" + K), "malformed"},
		{"tab after Bearer", "/", bearerHeader("Bearer\t" + K), "malformed"},
		{"bare key as the header", "/", bearerHeader(K), "malformed"},
		{"Bearer alone", "/", bearerHeader("Bearer"), "malformed"},
		{"text after the key", "/", bearerHeader("Bearer " + K + " " + K2), "malformed"},
		{"Bearer with a key and an empty path key", "/v1/", bearerHeader("Bearer " + unknown), "unknown"},
	}
	accepted := 0
	refusedBy := map[string]int{}
	for _, tc := range tricks {
		t.Run(tc.name, func(t *testing.T) {
			opens, dials := k.rec.opens.Load(), k.dials.Load()
			c, resp, err := k.try(tc.path, tc.header)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v (%v)", err, resp)
				}
				accepted++
				k.use(t, c)
				return
			}
			if c != nil {
				c.CloseNow()
			}
			refusedBy[tc.reason]++
			refusedWith(t, resp, err, http.StatusUnauthorized, -32001)
			if n := k.rec.opens.Load() - opens; n != 0 {
				t.Fatalf("the recorder opened %d streams for a refusal", n)
			}
			if n := k.dials.Load() - dials; n != 0 {
				t.Fatalf("the upstream was dialled %d times for a refusal", n)
			}
			if got := k.metric(t, "relaymeter_ws_edge_auth_refused_total", tc.reason); got != float64(refusedBy[tc.reason]) {
				t.Fatalf("auth_refused_total{reason=%q} = %v, want %d", tc.reason, got, refusedBy[tc.reason])
			}
		})
	}
	if n := k.rec.opens.Load(); n != int64(accepted) {
		t.Fatalf("%d streams opened for %d accepted connections", n, accepted)
	}
	logs := k.logs.String()
	for _, id := range []string{k.supKeyID, k.disabledKeID} {
		if !strings.Contains(logs, "key="+id) {
			t.Errorf("no refusal logged with key id %s:\n%s", id, logs)
		}
	}
	streams := k.events(t)
	if len(streams) != accepted {
		t.Fatalf("%d streams recorded, want %d", len(streams), accepted)
	}
	var raw [][]byte
	for id, evs := range streams {
		op := evs[0].GetOpened()
		if op == nil || op.Application != k.app.ID || op.ApiKeyId != k.appKey.ID {
			t.Fatalf("stream %s opened %v, want application %s and key %s", id, op, k.app.ID, k.appKey.ID)
		}
		for _, ev := range evs {
			b, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			raw = append(raw, b)
		}
	}
	k.noSecrets(t, raw)
}

// TestKeyRevokedWithinTTL: a revoked key, and one that expired, stop
// opening streams within the cache's TTL.
func TestKeyRevokedWithinTTL(t *testing.T) {
	const ttl = 300 * time.Millisecond
	k := setupKeys(t, identity.CacheConfig{TTL: ttl}, false)
	ctx := context.Background()
	expiring, _, err := k.reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: k.app.ID,
		ExpiresAt: time.Now().Add(1500 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{k.key, expiring} {
		c, resp, err := k.try("/v1/"+s, nil)
		if err != nil {
			t.Fatalf("a good key refused: %v (%v)", err, resp)
		}
		k.use(t, c)
	}
	if _, err := k.reg.RevokeKey(ctx, k.appKey.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	// refusedBy dials secret until it is refused, and returns how long
	// that took from start.
	refusedBy := func(secret, reason string, start time.Time, within time.Duration) {
		t.Helper()
		for {
			c, resp, err := k.try("/v1/"+secret, nil)
			if err != nil {
				refusedWith(t, resp, err, http.StatusUnauthorized, -32001)
				if took := time.Since(start); took > within {
					t.Fatalf("%s: refused after %v, want within %v", reason, took, within)
				}
				if k.metric(t, "relaymeter_ws_edge_auth_refused_total", reason) == 0 {
					t.Fatalf("no refusal counted as %s", reason)
				}
				return
			}
			k.use(t, c)
			if time.Since(start) > within {
				t.Fatalf("%s: still accepted %v later", reason, time.Since(start))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The slack covers a dial and a lookup on a loaded machine.
	refusedBy(k.key, "revoked", revoked, ttl+time.Second)
	time.Sleep(time.Until(revoked.Add(1500 * time.Millisecond)))
	refusedBy(expiring, "expired", time.Now(), 200*time.Millisecond)
	opens := k.rec.opens.Load()
	c, resp, err := k.try("/v1/"+k.otherK, nil)
	if err != nil {
		t.Fatalf("another key refused: %v (%v)", err, resp)
	}
	k.use(t, c)
	if k.rec.opens.Load() != opens+1 {
		t.Fatal("the other key's stream was not opened")
	}
}

// TestKeysWhileRegistryDown: with Postgres gone, a key the cache knows
// keeps working past its TTL; one it never saw gets 503.
func TestKeysWhileRegistryDown(t *testing.T) {
	const ttl = 100 * time.Millisecond
	k := setupKeys(t, identity.CacheConfig{TTL: ttl}, false)
	c, resp, err := k.try("/v1/"+k.key, nil)
	if err != nil {
		t.Fatalf("refused: %v (%v)", err, resp)
	}
	k.use(t, c)
	k.pool.Close()
	time.Sleep(3 * ttl)

	c, resp, err = k.try("/", bearerHeader("Bearer "+k.key))
	if err != nil {
		t.Fatalf("a known key refused with the registry down: %v (%v)", err, resp)
	}
	k.use(t, c)
	opens := k.rec.opens.Load()
	for _, s := range []string{k.otherK, "rmk_" + strings.Repeat("ab", 32)} {
		c, resp, err = k.try("/v1/"+s, nil)
		if c != nil {
			c.CloseNow()
		}
		refusedWith(t, resp, err, http.StatusServiceUnavailable, -32000)
	}
	if n := k.rec.opens.Load() - opens; n != 0 {
		t.Fatalf("%d streams opened for keys nobody could resolve", n)
	}
	if got := k.metric(t, "relaymeter_ws_edge_auth_refused_total", "unavailable"); got != 2 {
		t.Fatalf("auth_refused_total{reason=unavailable} = %v, want 2", got)
	}
	streams := k.events(t)
	if len(streams) != 2 {
		t.Fatalf("%d streams, want 2", len(streams))
	}
	for _, evs := range streams {
		if op := evs[0].GetOpened(); op.Application != k.app.ID || op.ApiKeyId != k.appKey.ID {
			t.Fatalf("opened %v", op)
		}
	}
	k.noSecrets(t, nil)
}

// TestOpenAccessWithKeys: with open access, a path names the application
// as before, and keys are still resolved as keys, never taken as names.
func TestOpenAccessWithKeys(t *testing.T) {
	k := setupKeys(t, identity.CacheConfig{}, true)
	for _, tc := range []struct {
		name, path string
		header     http.Header
		status     int
	}{
		{"application path", "/my-app", nil, 0},
		{"path key", "/v1/" + k.key, nil, 0},
		{"header key", "/", bearerHeader("Bearer " + k.key), 0},
		{"header beside an application path", "/my-app", bearerHeader("Bearer " + k.key), http.StatusUnauthorized},
		{"not a key under /v1", "/v1/hello", nil, http.StatusUnauthorized},
		{"/v1 alone", "/v1", nil, http.StatusUnauthorized},
		{"supplier key", "/v1/" + k.supKey, nil, http.StatusUnauthorized},
		{"unknown key", "/v1/rmk_" + strings.Repeat("1", 64), nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opens := k.rec.opens.Load()
			c, resp, err := k.try(tc.path, tc.header)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v (%v)", err, resp)
				}
				k.use(t, c)
				return
			}
			if c != nil {
				c.CloseNow()
			}
			refusedWith(t, resp, err, tc.status, -32001)
			if k.rec.opens.Load() != opens {
				t.Fatal("a stream opened for a refusal")
			}
		})
	}
	if !strings.Contains(k.logs.String(), "open access") {
		t.Error("open access was not logged")
	}
	got := map[string]string{} // application → key id
	n := 0
	for _, evs := range k.events(t) {
		op := evs[0].GetOpened()
		got[op.Application] = op.ApiKeyId
		n++
	}
	if n != 3 || len(got) != 2 || got["my-app"] != "" || got[k.app.ID] != k.appKey.ID {
		t.Fatalf("%d streams, applications and keys %v", n, got)
	}
	k.noSecrets(t, nil)
}

// TestKeysHostileInput: requests no client library would send never
// panic the edge and are refused.
func TestKeysHostileInput(t *testing.T) {
	k := setupKeys(t, identity.CacheConfig{}, false)
	for _, auth := range []string{"", "Bearer \x00" + k.key, "Bearer " + k.key + "\x00", "\xff\xfe"} {
		for _, target := range []string{"*", "http://evil.example/v1/" + k.key + "/x", "/v1/%zz", "/v1/" + strings.Repeat("a", 8000), "/%00/v1", "/v1/\xff"} {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RequestURI = target
			if u, err := url.Parse(target); err == nil {
				r.URL = u
			}
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Connection", "Upgrade")
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			w := httptest.NewRecorder()
			k.edge.ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("%q with Authorization %q: HTTP %d, want 401", target, auth, w.Code)
			}
		}
	}
	if n := k.rec.opens.Load(); n != 0 {
		t.Fatalf("%d streams opened", n)
	}
}
