package graphql

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of Config's rate limit.
const (
	DefaultRateLimit = 20 // requests per second per key
	DefaultRateBurst = 40
	// DefaultMaxRateKeys bounds the keys whose buckets are kept.
	DefaultMaxRateKeys = 100_000
)

// limiter is a token bucket per key id. A bucket idle long enough to
// have refilled is the same as a new one, so buckets idle that long are
// dropped: memory follows the keys active recently, and at most maxKeys.
type limiter struct {
	rate    rate.Limit
	burst   int
	maxKeys int
	idle    time.Duration // a bucket unused this long is full again
	now     func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

// newLimiter returns a limiter of perSecond requests a second with burst;
// nil (no limit) for a negative rate.
func newLimiter(perSecond float64, burst, maxKeys int) *limiter {
	if perSecond < 0 {
		return nil
	}
	if perSecond == 0 {
		perSecond = DefaultRateLimit
	}
	if burst == 0 {
		burst = DefaultRateBurst
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxRateKeys
	}
	idle := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &limiter{rate: rate.Limit(perSecond), burst: burst, maxKeys: maxKeys, idle: max(idle, time.Second),
		now: time.Now, buckets: map[string]*bucket{}}
}

// take takes a token of key's bucket; when there is none, it returns how
// long until there is one.
func (l *limiter) take(key string) (wait time.Duration, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		l.makeRoom(now)
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	}
	b.used = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Duration(math.MaxInt64), false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// makeRoom drops the buckets that have refilled, at most once per idle
// period unless the map is full; if it is full still, it drops buckets
// regardless (their keys start again with a full bucket).
func (l *limiter) makeRoom(now time.Time) {
	full := len(l.buckets) >= l.maxKeys
	if !full && now.Sub(l.lastSweep) < l.idle {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.used) >= l.idle {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < l.maxKeys {
			break
		}
		delete(l.buckets, k)
	}
}

// allow takes a token for key, or answers the request with 429
// RATE_LIMITED and a Retry-After in whole seconds and returns false.
func (l *limiter) allow(w http.ResponseWriter, key string) bool {
	if l == nil {
		return true
	}
	wait, ok := l.take(key)
	if ok {
		return true
	}
	secs := int64(math.Ceil(wait.Seconds()))
	if secs < 1 || wait == time.Duration(math.MaxInt64) {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeError(w, http.StatusTooManyRequests, CodeRateLimited,
		"rate limit of this key exceeded: retry after "+strconv.FormatInt(secs, 10)+" s")
	return false
}
