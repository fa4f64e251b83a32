package ws

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// TestClientIP: the address a connection counts against, by peer and
// X-Forwarded-For.
func TestClientIP(t *testing.T) {
	e := &Edge{cfg: Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("2001:db8:ff::/48")}}}
	for _, c := range []struct {
		peer string
		xff  []string
		want string // "" invalid; "bad" refused
	}{
		{"192.0.2.1:5000", nil, "192.0.2.1"},
		{"192.0.2.1:5000", []string{"10.0.0.1"}, "192.0.2.1"}, // untrusted peer: header ignored
		{"127.0.0.1:5000", nil, "127.0.0.1"},                  // trusted, no header: the proxy itself
		{"127.0.0.1:5000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"127.0.0.1:5000", []string{"198.51.100.1, 203.0.113.5"}, "203.0.113.5"},         // the client's claim is left of it
		{"127.0.0.1:5000", []string{"203.0.113.5, 10.9.1.1"}, "203.0.113.5"},             // a trusted hop skipped
		{"127.0.0.1:5000", []string{"203.0.113.5", "10.9.1.1,127.0.0.2"}, "203.0.113.5"}, // several headers, in order
		{"127.0.0.1:5000", []string{"10.9.1.1, 127.0.0.2"}, "10.9.1.1"},                  // all trusted: the left-most
		{"127.0.0.1:5000", []string{"junk, 203.0.113.5:81"}, "203.0.113.5"},              // with a port; junk left of it unread
		{"127.0.0.1:5000", []string{"[2001:db8::7]:443"}, "2001:db8::7"},                 // IPv6 with a port
		{"[::ffff:127.0.0.1]:5000", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},       // mapped addresses unmapped
		{"[2001:db8:ff::1]:5000", []string{"fe80::1%eth0"}, "fe80::1"},                   // zone dropped
		{"127.0.0.1:5000", []string{"203.0.113.5, junk"}, "bad"},                         // the one to take is junk
		{"127.0.0.1:5000", []string{" , "}, "127.0.0.1"},                                 // empty entries skipped
		{"pipe", []string{"203.0.113.5"}, ""},                                            // no peer address: not counted
	} {
		r := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		ip, ok := e.clientIP(r)
		got := ip.String()
		switch {
		case !ok:
			got = "bad"
		case !ip.IsValid():
			got = ""
		}
		if got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %q, want %q", c.peer, c.xff, got, c.want)
		}
	}
}

// TestLimitsCheck: the verdict for each kind of client message, and the
// answer the edge gives, valid JSON-RPC naming the request's id.
func TestLimitsCheck(t *testing.T) {
	l := newLimits(Limits{MaxBatch: 2, DenyMethods: []string{"admin_*", "Debug_*", "eth_sign"}})
	c := l.forConn()
	for _, tc := range []struct {
		m    *event.Message
		want verdict
	}{
		{&event.Message{Role: event.Role_REQUEST, Method: "eth_call"}, pass},
		{&event.Message{Role: event.Role_REQUEST, Method: "admin_peers"}, methodDenied},
		{&event.Message{Role: event.Role_REQUEST, Method: "DEBUG_x"}, methodDenied},
		{&event.Message{Role: event.Role_REQUEST, Method: "admin"}, pass}, // the prefix is "admin_"
		{&event.Message{Role: event.Role_REQUEST, Method: "eth_signTransaction"}, pass},
		{&event.Message{Role: event.Role_REQUEST, Method: "ETH_SIGN"}, methodDenied},
		{&event.Message{Role: event.Role_NOTIFICATION, Method: "admin_x"}, methodDenied},
		{&event.Message{Role: event.Role_RESPONSE}, pass},
		{&event.Message{Role: event.Role_REQUEST, BatchSize: 2, BatchMethods: []string{"eth_call", "debug_y"}}, methodDenied},
		{&event.Message{Role: event.Role_REQUEST, BatchSize: 3, BatchMethods: []string{"a", "b", "c"}}, batchTooLarge},
		{&event.Message{Role: event.Role_RESPONSE, BatchSize: 3, BatchMethods: []string{"", "", ""}}, batchTooLarge},
	} {
		if got := c.check(tc.m); got != tc.want {
			t.Errorf("%v %q %q: verdict %d, want %d", tc.m.Role, tc.m.Method, tc.m.BatchMethods, got, tc.want)
		}
	}
	m := event.Message{Role: event.Role_REQUEST, Method: "admin_\"x\\\x01é"}
	ans := c.appendAnswer(nil, methodDenied, []byte(`{"odd":"id"}`), &m)
	var r struct {
		ID    map[string]string
		Error struct {
			Code    int
			Message string
		}
	}
	if err := json.Unmarshal(ans, &r); err != nil || r.ID["odd"] != "id" || r.Error.Code != -32601 ||
		r.Error.Message != "the method admin_\"x\\\x01é does not exist/is not available" {
		t.Fatalf("answer %s: %+v, %v", ans, r, err)
	}

	rl := newLimits(Limits{MessagesPerSecond: 1e-9, MessageBurst: 1}).forConn()
	one := event.Message{Role: event.Role_REQUEST, Method: "eth_call"}
	if rl.check(&one) != pass || rl.check(&one) != rateLimited {
		t.Fatal("a bucket of one: want pass, then rate limited")
	}
	if (&connLimits{}).check(&one) != pass {
		t.Fatal("no limits: want pass")
	}
}

// TestLimitsCheckAllocs: checking a message that passes allocates
// nothing, whatever limits are configured.
func TestLimitsCheckAllocs(t *testing.T) {
	c := newLimits(Limits{MessagesPerSecond: 1e9, DenyMethods: []string{"admin_*", "debug_*"}, AllowMethods: []string{"eth_*"}}).forConn()
	m := event.Message{Role: event.Role_REQUEST, BatchSize: 2, BatchMethods: []string{"eth_call", "eth_chainId"}}
	if n := testing.AllocsPerRun(1000, func() {
		if c.check(&m) != pass {
			t.Fatal("denied")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
}

// TestLimitsValidate: patterns and rates that cannot be are refused.
func TestLimitsValidate(t *testing.T) {
	for _, l := range []Limits{
		{DenyMethods: []string{""}},
		{DenyMethods: []string{"a*b"}},
		{AllowMethods: []string{"**"}},
		{DenyMethods: []string{" admin_*"}},
		{MessagesPerSecond: -1},
		{MessageBurst: -1},
	} {
		if l.Validate() == nil {
			t.Errorf("%+v: valid", l)
		}
	}
	for _, l := range []Limits{{}, {DenyMethods: []string{"*"}}, {AllowMethods: []string{"eth_call", "net_*"}}, {MaxBatch: -1, MaxConnectionsPerIP: -1}} {
		if err := l.Validate(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
}
