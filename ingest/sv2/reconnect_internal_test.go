package sv2

import (
	"fmt"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/stratum/sv2"
)

func TestRedirectsBoundedAndExpiring(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := newRedirects(time.Minute, 3, func() time.Time { return now })
	for i := range 3 {
		r.set(fmt.Sprint(i), fmt.Sprintf("pool%d:1", i))
		now = now.Add(time.Second)
	}
	r.set("3", "pool3:1") // full: the entry closest to expiry ("0") goes
	if _, ok := r.get("0"); ok || r.len() != 3 {
		t.Fatalf("table of %d, \"0\" kept %v", r.len(), ok)
	}
	if a, ok := r.get("3"); !ok || a != "pool3:1" {
		t.Fatalf("get 3: %q %v", a, ok)
	}
	now = now.Add(time.Minute)
	if _, ok := r.get("3"); ok {
		t.Fatal("entry outlived its TTL")
	}
	r.set("4", "pool4:1") // expired entries go first
	if r.len() > 3 {
		t.Fatalf("table of %d", r.len())
	}
}

func TestRequestedAddr(t *testing.T) {
	for _, tc := range []struct {
		host string
		port uint16
		want string
	}{
		{"", 0, "10.0.0.1:3333"},
		{"", 4444, "10.0.0.1:4444"},
		{"pool2.example", 0, "pool2.example:3333"},
		{"::1", 5, "[::1]:5"},
	} {
		if got := requestedAddr("10.0.0.1:3333", &sv2.Reconnect{NewHost: tc.host, NewPort: tc.port}); got != tc.want {
			t.Errorf("%q %d: %s, want %s", tc.host, tc.port, got, tc.want)
		}
	}
}
