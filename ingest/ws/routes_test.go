package ws_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/ws"
	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// serviceNode is a named service's upstream: a simulated node of its own
// chain id behind a URL with credentials, counting its handshakes.
type serviceNode struct {
	chainID uint64
	srv     *httptest.Server
	dials   atomic.Int64
	closes  chan websocket.StatusCode
}

func startServiceNode(t *testing.T, chainID uint64) *serviceNode {
	t.Helper()
	n := &serviceNode{chainID: chainID, closes: make(chan websocket.StatusCode, 256)}
	node := ethsim.New(ethsim.Config{ChainID: chainID, HeadInterval: -1,
		OnClose: func(code websocket.StatusCode) { n.closes <- code }})
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.dials.Add(1)
		node.ServeHTTP(w, r)
	}))
	t.Cleanup(n.srv.Close)
	return n
}

// url has credentials in its userinfo, path and query, as hosted nodes do.
func (n *serviceNode) url() string {
	return "ws://user:SECRETPASS@" + strings.TrimPrefix(n.srv.URL, "http://") + "/SECRETPATH?key=SECRETQUERY"
}

func (n *serviceNode) addr() string { return "ws://" + strings.TrimPrefix(n.srv.URL, "http://") }

// routed is a keyed edge with the named services sol and arb, each on its
// own node.
type routed struct {
	*keyed
	nodes map[string]*serviceNode // by service; "eth" is the default's
}

func setupRoutes(t *testing.T, openAccess bool) *routed {
	t.Helper()
	r := &routed{nodes: map[string]*serviceNode{"sol": startServiceNode(t, 101), "arb": startServiceNode(t, 42161)}}
	r.keyed = setupKeys(t, identity.CacheConfig{}, openAccess, func(c *ws.Config) {
		c.Services = map[string]ws.Route{"sol": {Upstream: r.nodes["sol"].url()}, "arb": {Upstream: r.nodes["arb"].url()}}
	})
	return r
}

// dials is how many handshakes each upstream has had, by service.
func (r *routed) dials() map[string]int64 {
	d := map[string]int64{"eth": r.keyed.dials.Load()}
	for s, n := range r.nodes {
		d[s] = n.dials.Load()
	}
	return d
}

// use makes one eth_chainId call on c, checks it reached service's node,
// closes c and waits for that node's side to end.
func (r *routed) use(t *testing.T, c *websocket.Conn, service string) {
	t.Helper()
	want := `"result":"0x1"`
	closes := r.node.closes
	if n := r.nodes[service]; n != nil {
		want, closes = fmt.Sprintf(`"result":"0x%x"`, n.chainID), n.closes
	}
	got := exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 1)
	if !strings.Contains(got[0], want) {
		t.Fatalf("eth_chainId answered %s, want %s: not %s's upstream", got[0], want, service)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closes:
	case <-time.After(30 * time.Second):
		t.Fatal("no upstream connection ended")
	}
}

type routeCase struct {
	name    string
	path    string
	header  http.Header
	service string // accepted: the service reached; refused: ""
	app     string // accepted in open access: the application billed ("" the key's)
	status  int    // refused
	code    int
	reason  string
}

// runRoutes runs the cases against r, and checks the streams recorded:
// each names the service it reached, its redacted upstream and who it
// bills; refusals dial no upstream and record nothing; no secret, key or
// upstream credential, reaches the logs, the events or a refusal's body.
func runRoutes(t *testing.T, r *routed, cases []routeCase) {
	t.Helper()
	type want struct{ service, app string }
	accepted := map[want]int{}
	refusedBy := map[string]int{}
	var bodies [][]byte
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opens, dials := r.rec.opens.Load(), r.dials()
			c, resp, err := r.try(tc.path, tc.header)
			if tc.service != "" {
				if err != nil {
					t.Fatalf("refused: %v (%v)", err, resp)
				}
				app := tc.app
				if app == "" {
					app = r.app.ID
				}
				accepted[want{tc.service, app}]++
				r.use(t, c, tc.service)
				after := r.dials()
				for s, n := range after {
					if d, w := n-dials[s], map[bool]int64{true: 1}[s == tc.service]; d != w {
						t.Fatalf("upstream of %s dialled %d times, want %d", s, d, w)
					}
				}
				return
			}
			if c != nil {
				c.CloseNow()
			}
			refusedBy[tc.reason]++
			bodies = append(bodies, refusedWith(t, resp, err, tc.status, tc.code))
			if n := r.rec.opens.Load() - opens; n != 0 {
				t.Fatalf("the recorder opened %d streams for a refusal", n)
			}
			for s, n := range r.dials() {
				if n != dials[s] {
					t.Fatalf("the upstream of %s was dialled for a refusal", s)
				}
			}
			if got := r.metric(t, "relaymeter_ws_edge_auth_refused_total", tc.reason); got != float64(refusedBy[tc.reason]) {
				t.Fatalf("auth_refused_total{reason=%q} = %v, want %d", tc.reason, got, refusedBy[tc.reason])
			}
		})
	}
	got := map[want]int{}
	var raw [][]byte
	for id, evs := range r.events(t) {
		op := evs[0].GetOpened()
		if op == nil {
			t.Fatalf("stream %s has no StreamOpened first", id)
		}
		got[want{op.Service, op.Application}]++
		wantAddr := r.upURL
		if n := r.nodes[op.Service]; n != nil {
			wantAddr = n.addr()
		}
		if op.UpstreamAddr != wantAddr {
			t.Fatalf("stream %s of %s: upstream %q, want %q", id, op.Service, op.UpstreamAddr, wantAddr)
		}
		if op.ApiKeyId != "" && op.ApiKeyId != r.appKey.ID {
			t.Fatalf("stream %s: key %s", id, op.ApiKeyId)
		}
		for _, ev := range evs {
			b, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			raw = append(raw, b)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(accepted) {
		t.Fatalf("streams by service and application %v, want %v", got, accepted)
	}
	r.noSecrets(t, append(raw, bodies...))
	logs := r.logs.String()
	for _, s := range []string{"SECRETPASS", "SECRETPATH", "SECRETQUERY"} {
		if strings.Contains(logs, s) {
			t.Fatalf("an upstream credential in the logs:\n%s", logs)
		}
		for _, b := range raw {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("an upstream credential in an event: %q", b)
			}
		}
	}
}

// TestRoutes: without open access, /v1/<key> reaches the default service,
// /<service>/v1/<key> (or /<service> with a Bearer key) the named one, and
// a service route naming no configured service is refused with 404.
func TestRoutes(t *testing.T) {
	r := setupRoutes(t, false)
	K, K2 := r.key, r.otherK
	unknown := "rmk_" + strings.Repeat("0", 64)
	bad := func(name, path string, h http.Header, status int, reason string) routeCase {
		code := -32001
		if status == http.StatusNotFound {
			code = -32004
		}
		return routeCase{name: name, path: path, header: h, status: status, code: code, reason: reason}
	}
	runRoutes(t, r, []routeCase{
		{name: "default, path key", path: "/v1/" + K, service: "eth"},
		{name: "default, header key", path: "/", header: bearerHeader("Bearer " + K), service: "eth"},
		{name: "sol, path key", path: "/sol/v1/" + K, service: "sol"},
		{name: "arb, path key", path: "/arb/v1/" + K, service: "arb"},
		{name: "sol, header key at /sol", path: "/sol", header: bearerHeader("Bearer " + K), service: "sol"},
		{name: "sol, header key at /sol/", path: "/sol/", header: bearerHeader("Bearer " + K), service: "sol"},
		{name: "sol, header key at /sol/v1", path: "/sol/v1", header: bearerHeader("bearer " + K), service: "sol"},
		{name: "sol, header key at /sol/v1/", path: "/sol/v1/", header: bearerHeader("Bearer " + K), service: "sol"},
		{name: "sol, path key and the same header key", path: "/sol/v1/" + K, header: bearerHeader("Bearer " + K), service: "sol"},
		{name: "sol, query names another service", path: "/sol/v1/" + K + "?service=arb", service: "sol"},

		bad("unknown service", "/btc/v1/"+K, nil, http.StatusNotFound, "no_service"),
		bad("unknown service, header key", "/btc/v1", bearerHeader("Bearer "+K), http.StatusNotFound, "no_service"),
		bad("unknown service, not a key", "/btc/v1/hello", nil, http.StatusNotFound, "no_service"),
		bad("service ids are case-sensitive", "/SOL/v1/"+K, nil, http.StatusNotFound, "no_service"),
		bad("a key as the service", "/"+K2+"/v1/"+K, nil, http.StatusNotFound, "no_service"),
		bad("a key as the only segment", "/"+K, nil, http.StatusUnauthorized, "missing"),
		bad("unknown service, header key, no v1", "/btc", bearerHeader("Bearer "+K), http.StatusUnauthorized, "malformed"),
		bad("v1 twice", "/v1/v1/"+K, nil, http.StatusUnauthorized, "malformed"),
		bad("a service under v1", "/v1/sol/v1/"+K, nil, http.StatusUnauthorized, "malformed"),
		bad("extra segment", "/sol/v1/"+K+"/extra", nil, http.StatusUnauthorized, "malformed"),
		bad("trailing slash", "/sol/v1/"+K+"/", nil, http.StatusUnauthorized, "malformed"),
		bad("double slash after v1", "/sol/v1//"+K, nil, http.StatusUnauthorized, "malformed"),
		bad("double slash before v1", "/sol//v1/"+K, nil, http.StatusUnauthorized, "missing"),
		bad("double slash before the service", "//sol/v1/"+K, nil, http.StatusUnauthorized, "missing"),
		bad("dot segment before the service", "/./sol/v1/"+K, nil, http.StatusUnauthorized, "missing"),
		bad("dot segment after the service", "/sol/./v1/"+K, nil, http.StatusUnauthorized, "missing"),
		bad("percent-encoded service", "/%73ol/v1/"+K, nil, http.StatusUnauthorized, "missing"),
		bad("encoded slash after the service", "/sol%2Fv1/"+K, nil, http.StatusUnauthorized, "missing"),
		bad("percent-encoded v1 after the service", "/sol/%761/"+K, nil, http.StatusUnauthorized, "missing"),
		bad("percent-encoded key after the service", "/sol/v1/%72"+K[1:], nil, http.StatusUnauthorized, "malformed"),
		bad("upper-case V1 after the service", "/sol/V1/"+K, nil, http.StatusUnauthorized, "missing"),
		bad("sol, no key", "/sol", nil, http.StatusUnauthorized, "missing"),
		bad("sol, an application path", "/sol/"+r.app.ID, nil, http.StatusUnauthorized, "missing"),
		bad("sol, header beside an application path", "/sol/"+r.app.ID, bearerHeader("Bearer "+K), http.StatusUnauthorized, "malformed"),
		bad("sol, header names another key", "/sol/v1/"+K, bearerHeader("Bearer "+K2), http.StatusUnauthorized, "mismatch"),
		bad("sol, unknown key", "/sol/v1/"+unknown, nil, http.StatusUnauthorized, "unknown"),
		bad("sol, supplier key", "/sol/v1/"+r.supKey, nil, http.StatusUnauthorized, "role"),
	})
}

// TestRoutesOpenAccess: in open access, /<service>/<application> bills
// the application at a named service and /<application> at the default;
// any other path of two segments or more is refused with 404.
func TestRoutesOpenAccess(t *testing.T) {
	r := setupRoutes(t, true)
	K := r.key
	bad := func(name, path string, h http.Header, status int, reason string) routeCase {
		code := -32001
		if status == http.StatusNotFound {
			code = -32004
		}
		return routeCase{name: name, path: path, header: h, status: status, code: code, reason: reason}
	}
	runRoutes(t, r, []routeCase{
		{name: "default, application", path: "/wallet", service: "eth", app: "wallet"},
		{name: "sol, application", path: "/sol/wallet", service: "sol", app: "wallet"},
		{name: "arb, application", path: "/arb/game", service: "arb", app: "game"},
		{name: "an application named like an unconfigured service", path: "/btc", service: "eth", app: "btc"},
		{name: "sol, path key", path: "/sol/v1/" + K, service: "sol"},
		{name: "sol, header key", path: "/sol", header: bearerHeader("Bearer " + K), service: "sol"},
		{name: "default, path key", path: "/v1/" + K, service: "eth"},

		bad("unknown service, application", "/btc/wallet", nil, http.StatusNotFound, "no_service"),
		bad("unknown service, key", "/btc/v1/"+K, nil, http.StatusNotFound, "no_service"),
		bad("service ids are case-sensitive", "/Sol/wallet", nil, http.StatusNotFound, "no_service"),
		bad("three segments", "/a/b/c", nil, http.StatusNotFound, "no_service"),
		bad("sol, two application segments", "/sol/wallet/x", nil, http.StatusNotFound, "no_service"),
		bad("double slash", "//wallet", nil, http.StatusNotFound, "no_service"),
		bad("percent-encoded service", "/%73ol/wallet", nil, http.StatusNotFound, "no_service"),
		bad("v1 is not an application", "/v1", nil, http.StatusUnauthorized, "missing"),
		bad("sol, v1 is not an application", "/sol/v1", nil, http.StatusUnauthorized, "missing"),
		bad("sol, not a key under v1", "/sol/v1/hello", nil, http.StatusUnauthorized, "malformed"),
		bad("sol, no application", "/sol", nil, http.StatusBadRequest, "missing"),
		bad("sol, empty application", "/sol/", nil, http.StatusBadRequest, "missing"),
		bad("sol, header beside an application", "/sol/wallet", bearerHeader("Bearer "+K), http.StatusUnauthorized, "malformed"),
	})
}

// TestRoutesConfig: a service id that could not be told from a key form,
// or is not one path segment, and a service upstream that is not a
// WebSocket URL, are refused at start, the error naming no credential.
func TestRoutesConfig(t *testing.T) {
	for _, tc := range []struct {
		id, upstream string
		want         string
	}{
		{"v1", "ws://x", "reserved"},
		{"V1", "ws://x", "reserved"},
		{"", "ws://x", "empty"},
		{"a/b", "ws://x", "letters"},
		{"s%20l", "ws://x", "letters"},
		{"..", "ws://x", "letters"},
		{"rmk_" + strings.Repeat("ab", 32), "ws://x", "API key"},
		{"sol", "http://u:SECRETPASS@x/SECRETPATH", "sol"},
		{"sol", "ws:///SECRETPATH?k=SECRETQUERY", "sol"},
	} {
		err := ws.Config{Recorder: &countingRecorder{}, Upstream: "ws://node", OpenAccess: true,
			Services: map[string]ws.Route{tc.id: {Upstream: tc.upstream}}}.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("service %q at %q: %v, want an error about %q naming no secret", tc.id, tc.upstream, err, tc.want)
		}
	}
	if err := (ws.Config{Recorder: &countingRecorder{}, Upstream: "ws://node", OpenAccess: true,
		Services: map[string]ws.Route{"eth": {Upstream: "wss://other"}, "sol-main_2.x~": {Upstream: "ws://sol"}}}).Validate(); err != nil {
		t.Fatalf("good services refused: %v", err)
	}
}
