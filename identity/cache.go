package identity

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults of CacheConfig.
const (
	DefaultTTL        = 10 * time.Second
	DefaultMaxStale   = 10 * time.Minute
	DefaultMaxEntries = 100_000
	// lookupTimeout bounds one lookup in the registry, which the callers
	// waiting for it share.
	lookupTimeout = 5 * time.Second
)

// CacheConfig configures a Cache.
type CacheConfig struct {
	// TTL is how long an answer (a principal, or a refusal) is trusted
	// before the registry is asked again: a revoked key, a disabled
	// application, a new key work or stop working within TTL. Zero means
	// DefaultTTL (10 s).
	TTL time.Duration
	// MaxStale is how long past TTL an answer is still used while the
	// registry cannot be reached, so that a Postgres outage does not lock
	// out callers already known. Zero means DefaultMaxStale (10 min).
	MaxStale time.Duration
	// MaxEntries bounds the answers kept; zero means DefaultMaxEntries.
	MaxEntries int
}

// Cache resolves keys through a Resolver, keeping each answer for a TTL.
// Answers are keyed by the secret's sha256; the secret itself is not kept.
// Concurrent lookups of one key share one question to the registry.
type Cache struct {
	r     Resolver
	cfg   CacheConfig
	now   func() time.Time
	group singleflight.Group

	mu      sync.Mutex
	entries map[[32]byte]entry
}

// entry is one answer: a principal, or the refusal in err.
type entry struct {
	p       Principal
	err     error
	fetched time.Time
}

// NewCache returns a Cache in front of r.
func NewCache(r Resolver, cfg CacheConfig) *Cache {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxStale <= 0 {
		cfg.MaxStale = DefaultMaxStale
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	return &Cache{r: r, cfg: cfg, now: time.Now, entries: map[[32]byte]entry{}}
}

// TTL is how long an answer is trusted: the longest a revoked key keeps
// working.
func (c *Cache) TTL() time.Duration { return c.cfg.TTL }

// Resolve returns the principal of secret from the cache when its answer
// is younger than the TTL, else from the registry. With the registry
// unreachable, an answer up to TTL+MaxStale old stands in; a key never
// seen is then ErrUnavailable.
func (c *Cache) Resolve(ctx context.Context, secret string) (Principal, error) {
	if !LooksLikeSecret(secret) {
		return Principal{}, &RefusedError{Reason: "malformed"}
	}
	h := Hash(secret)
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[h]
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < c.cfg.TTL {
		return e.answer(now)
	}
	ch := c.group.DoChan(string(h[:]), func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		p, err := c.r.Resolve(lctx, secret)
		if err == nil || errors.Is(err, ErrRefused) {
			c.put(h, entry{p: p, err: err, fetched: c.now()})
		}
		return p, err
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return Principal{}, ctx.Err()
	}
	if res.Err == nil || errors.Is(res.Err, ErrRefused) {
		return res.Val.(Principal), res.Err
	}
	if ok && now.Sub(e.fetched) < c.cfg.TTL+c.cfg.MaxStale {
		return e.answer(now)
	}
	if errors.Is(res.Err, ErrUnavailable) {
		return Principal{}, res.Err
	}
	return Principal{}, errors.Join(ErrUnavailable, res.Err)
}

// answer is e as of now: a principal whose key expired since is refused.
func (e entry) answer(now time.Time) (Principal, error) {
	if e.err != nil {
		return Principal{}, e.err
	}
	if err := e.p.check(now); err != nil {
		return Principal{}, err
	}
	return e.p, nil
}

// put keeps e, making room by dropping answers too old to be used, then
// any answer, when the cache is full.
func (c *Cache) put(h [32]byte, e entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[h]; !ok && len(c.entries) >= c.cfg.MaxEntries {
		for k, old := range c.entries {
			if e.fetched.Sub(old.fetched) >= c.cfg.TTL+c.cfg.MaxStale {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.cfg.MaxEntries {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[h] = e
}
