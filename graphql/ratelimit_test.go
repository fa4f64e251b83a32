package graphql

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestRateLimit: past its burst a key gets 429 RATE_LIMITED with a
// Retry-After, and other keys are not slowed by it.
func TestRateLimit(t *testing.T) {
	tn := newTenants(t, Config{RateLimit: 0.5, RateBurst: 2})
	srv := tn.srv
	const q = `{ viewer { role } }`
	for i := range 2 {
		if res := post(t, srv, tn.app1, q, nil); res.Status != http.StatusOK || len(res.Errors) != 0 {
			t.Fatalf("request %d within the burst: %d %+v", i, res.Status, res.Errors)
		}
	}
	body, _ := json.Marshal(map[string]any{"query": q})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tn.app1)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out response
	json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	after, _ := strconv.Atoi(res.Header.Get("Retry-After"))
	// One token comes every 2 s.
	if res.StatusCode != http.StatusTooManyRequests || len(out.Errors) != 1 || out.Errors[0].Extensions.Code != CodeRateLimited || after < 1 || after > 2 {
		t.Errorf("over the burst: %d, Retry-After %q, %+v", res.StatusCode, res.Header.Get("Retry-After"), out.Errors)
	}
	// Another key has its own bucket.
	if res := post(t, srv, tn.app2, q, nil); res.Status != http.StatusOK {
		t.Errorf("other key: %d %+v", res.Status, res.Errors)
	}
	// A refused key is answered 401, not limited.
	wantError(t, "revoked", post(t, srv, tn.revoked, q, nil), http.StatusUnauthorized, CodeUnauthenticated)
}

// TestLimiterEvicts: buckets idle long enough to have refilled are
// dropped, and the map never holds more than maxKeys.
func TestLimiterEvicts(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := newLimiter(10, 20, 3) // refills in 2 s
	l.now = func() time.Time { return now }
	for _, k := range []string{"a", "b", "c"} {
		if _, ok := l.take(k); !ok {
			t.Fatalf("take %s: refused", k)
		}
	}
	if len(l.buckets) != 3 {
		t.Fatalf("%d buckets", len(l.buckets))
	}
	// Full: a fourth key makes room.
	l.take("d")
	if len(l.buckets) > 3 {
		t.Errorf("%d buckets over the bound of 3", len(l.buckets))
	}
	// Later than the refill time, the idle ones go.
	now = now.Add(3 * time.Second)
	l.take("e")
	if len(l.buckets) != 1 || l.buckets["e"] == nil {
		t.Errorf("after idling: %d buckets", len(l.buckets))
	}
	// A bucket dropped and made anew is what it would have been: full.
	for i := range 20 {
		if _, ok := l.take("f"); !ok {
			t.Fatalf("take %d of the burst: refused", i)
		}
	}
	if wait, ok := l.take("f"); ok || wait <= 0 || wait > 100*time.Millisecond {
		t.Errorf("past the burst: wait %v, ok %v", wait, ok)
	}
	if newLimiter(-1, 0, 0) != nil {
		t.Error("a negative rate is no limit")
	}
	if l := newLimiter(0, 0, 0); l.rate != DefaultRateLimit || l.burst != DefaultRateBurst {
		t.Errorf("defaults: %v %d", l.rate, l.burst)
	}
}
