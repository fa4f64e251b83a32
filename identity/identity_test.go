package identity_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func registry(t *testing.T) (*identity.Registry, *pgxpool.Pool) {
	t.Helper()
	pool, _ := pgtest.DB(t)
	return identity.NewRegistry(pool), pool
}

func refusal(t *testing.T, err error, reason string) {
	t.Helper()
	var re *identity.RefusedError
	if !errors.As(err, &re) || !errors.Is(err, identity.ErrRefused) || re.Reason != reason {
		t.Fatalf("err = %v, want a refusal for %q", err, reason)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	reg, _ := registry(t)
	app, err := reg.CreateApplication(ctx, "wallet")
	if err != nil {
		t.Fatal(err)
	}
	sup, err := reg.CreateSupplier(ctx, "node runner")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(app.ID, "app_") || !strings.HasPrefix(sup.ID, "sup_") || app.Disabled {
		t.Fatalf("app %+v, supplier %+v", app, sup)
	}
	secret, k, err := reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: app.ID, Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if !identity.LooksLikeSecret(secret) || !strings.HasPrefix(k.ID, "key_") || k.Application != app.ID || k.Name != "prod" {
		t.Fatalf("secret %q, key %+v", secret, k)
	}
	p, err := reg.Resolve(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if p != (identity.Principal{KeyID: k.ID, Role: identity.RoleApplication, Application: app.ID}) {
		t.Fatalf("principal %+v", p)
	}
	if k, _ = reg.Key(ctx, k.ID); k.LastUsedAt.IsZero() {
		t.Fatal("a resolved key has no last-used time")
	}

	// The registry keeps no secret: nothing in api_keys holds it.
	keys, err := reg.Keys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v, %v", keys, err)
	}

	// Refusals.
	_, err = reg.Resolve(ctx, "rmk_"+strings.Repeat("0", 64))
	refusal(t, err, "unknown")
	_, err = reg.Resolve(ctx, "not a key")
	refusal(t, err, "malformed")
	_, err = reg.Resolve(ctx, secret+"0")
	refusal(t, err, "malformed")

	if _, err := reg.SetApplicationDisabled(ctx, app.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = reg.Resolve(ctx, secret)
	refusal(t, err, "application disabled")
	if _, err := reg.SetApplicationDisabled(ctx, app.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Resolve(ctx, secret); err != nil {
		t.Fatalf("enabled again: %v", err)
	}
	if k, err = reg.RevokeKey(ctx, k.ID); err != nil || k.RevokedAt.IsZero() {
		t.Fatalf("revoke: %+v, %v", k, err)
	}
	_, err = reg.Resolve(ctx, secret)
	refusal(t, err, "revoked")

	// Expiry.
	short, sk, err := reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleSupplier, Supplier: sup.ID, ExpiresAt: time.Now().Add(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := reg.Resolve(ctx, short); err != nil || p.Supplier != sup.ID || p.Role != identity.RoleSupplier {
		t.Fatalf("supplier key: %+v, %v", p, err)
	}
	time.Sleep(400 * time.Millisecond)
	_, err = reg.Resolve(ctx, short)
	refusal(t, err, "expired")
	if re := (*identity.RefusedError)(nil); !errors.As(err, &re) || re.KeyID != sk.ID || strings.Contains(err.Error(), short) {
		t.Fatalf("refusal %v names the key %s by id, never by secret", err, sk.ID)
	}

	// Specs the registry refuses.
	for _, spec := range []identity.NewKey{
		{Role: "root"},
		{Role: identity.RoleApplication},
		{Role: identity.RoleSupplier, Application: app.ID},
		{Role: identity.RoleAdmin, Supplier: sup.ID},
		{Role: identity.RoleAdmin, ExpiresAt: time.Now().Add(-time.Hour)},
	} {
		if _, _, err := reg.CreateKey(ctx, spec); err == nil {
			t.Errorf("created a key to %+v", spec)
		}
	}
	if _, _, err := reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: "app_none"}); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("a key for a missing application: %v", err)
	}
	if _, err := reg.RevokeKey(ctx, "key_none"); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("revoking a missing key: %v", err)
	}
	if _, err := reg.SetApplicationDisabled(ctx, "app_none", true); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("disabling a missing application: %v", err)
	}
}

// counting counts the lookups that reach the registry.
type counting struct {
	r identity.Resolver
	n atomic.Int64
}

func (c *counting) Resolve(ctx context.Context, secret string) (identity.Principal, error) {
	c.n.Add(1)
	return c.r.Resolve(ctx, secret)
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	reg, pool := registry(t)
	app, _ := reg.CreateApplication(ctx, "a")
	secret, k, err := reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: app.ID})
	if err != nil {
		t.Fatal(err)
	}
	cr := &counting{r: reg}
	const ttl = 300 * time.Millisecond
	c := identity.NewCache(cr, identity.CacheConfig{TTL: ttl, MaxStale: time.Hour})

	// Many connections at once, one question.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if p, err := c.Resolve(ctx, secret); err != nil || p.Application != app.ID {
				t.Errorf("resolve: %+v, %v", p, err)
			}
		})
	}
	wg.Wait()
	if n := cr.n.Load(); n != 1 {
		t.Fatalf("50 concurrent resolutions asked the registry %d times, want 1", n)
	}
	for range 100 {
		c.Resolve(ctx, secret)
	}
	if n := cr.n.Load(); n != 1 {
		t.Fatalf("steady state asked the registry %d times, want 1", n)
	}

	// Unknown keys are remembered too; malformed ones never asked about.
	unknown := "rmk_" + strings.Repeat("ab", 32)
	for range 3 {
		_, err := c.Resolve(ctx, unknown)
		refusal(t, err, "unknown")
		_, err = c.Resolve(ctx, "rmk_short")
		refusal(t, err, "malformed")
	}
	if n := cr.n.Load(); n != 2 {
		t.Fatalf("asked the registry %d times, want 2", n)
	}

	// A revoked key works until the TTL has passed, not after.
	if _, err := reg.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		_, err := c.Resolve(ctx, secret)
		if err != nil {
			refusal(t, err, "revoked")
			break
		}
		if time.Since(revoked) > ttl+200*time.Millisecond {
			t.Fatalf("a revoked key still works %v after revocation (TTL %v)", time.Since(revoked), ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The registry down: known answers stand, unknown keys are unavailable.
	live, _, _ := reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleAdmin})
	if p, err := c.Resolve(ctx, live); err != nil || p.Role != identity.RoleAdmin {
		t.Fatalf("admin key: %+v, %v", p, err)
	}
	pool.Close()
	time.Sleep(ttl)
	if p, err := c.Resolve(ctx, live); err != nil || p.Role != identity.RoleAdmin {
		t.Fatalf("a known key with the registry down: %+v, %v", p, err)
	}
	_, err = c.Resolve(ctx, secret)
	refusal(t, err, "revoked")
	if _, err := c.Resolve(ctx, "rmk_"+strings.Repeat("cd", 32)); !errors.Is(err, identity.ErrUnavailable) || errors.Is(err, identity.ErrRefused) {
		t.Fatalf("a new key with the registry down: %v, want ErrUnavailable", err)
	}
}

func TestCacheStaleLimit(t *testing.T) {
	ctx := context.Background()
	reg, pool := registry(t)
	secret, _, err := reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	c := identity.NewCache(reg, identity.CacheConfig{TTL: 100 * time.Millisecond, MaxStale: 200 * time.Millisecond})
	if _, err := c.Resolve(ctx, secret); err != nil {
		t.Fatal(err)
	}
	pool.Close()
	time.Sleep(150 * time.Millisecond)
	if _, err := c.Resolve(ctx, secret); err != nil {
		t.Fatalf("within MaxStale: %v", err)
	}
	time.Sleep(250 * time.Millisecond)
	if _, err := c.Resolve(ctx, secret); !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("past MaxStale: %v, want ErrUnavailable", err)
	}
}

func TestCacheBounded(t *testing.T) {
	ctx := context.Background()
	reg, _ := registry(t)
	c := identity.NewCache(reg, identity.CacheConfig{MaxEntries: 10})
	for i := range 100 {
		_, err := c.Resolve(ctx, fmt.Sprintf("rmk_%064x", i))
		refusal(t, err, "unknown")
		if c.Len() > 10 {
			t.Fatalf("the cache holds %d answers, bound 10", c.Len())
		}
	}
}
