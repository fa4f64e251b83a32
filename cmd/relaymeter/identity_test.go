package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/internal/pgtest"
)

// cli runs a relaymeter subcommand in-process and returns its exit code,
// stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	return code, strings.TrimSpace(out.String()), errOut.String()
}

func TestIdentityCLI(t *testing.T) {
	pool, url := pgtest.DB(t)
	db := "--database-url=" + url
	code, app, stderr := cli(t, "apps", "create", "wallet", db)
	if code != 0 || !strings.HasPrefix(app, "app_") {
		t.Fatalf("apps create: %d %q %s", code, app, stderr)
	}
	code, sup, stderr := cli(t, "suppliers", "create", "node runner", db)
	if code != 0 || !strings.HasPrefix(sup, "sup_") {
		t.Fatalf("suppliers create: %d %q %s", code, sup, stderr)
	}
	code, secret, stderr := cli(t, "keys", "create", "--app", app, "--name", "prod", "--expires", "720h", db)
	if code != 0 || !identity.LooksLikeSecret(secret) {
		t.Fatalf("keys create: %d %q %s", code, secret, stderr)
	}
	reg := identity.NewRegistry(pool)
	p, err := reg.Resolve(context.Background(), secret)
	if err != nil || p.Application != app || p.ExpiresAt.IsZero() {
		t.Fatalf("the created key resolves to %+v, %v", p, err)
	}
	code, list, _ := cli(t, "keys", "list", db)
	if code != 0 || !strings.Contains(list, p.KeyID) || !strings.Contains(list, "prod") || strings.Contains(list, secret) {
		t.Fatalf("keys list (%d):\n%s", code, list)
	}
	if code, _, stderr := cli(t, "keys", "revoke", p.KeyID, db); code != 0 {
		t.Fatalf("keys revoke: %d %s", code, stderr)
	}
	if _, err := reg.Resolve(context.Background(), secret); !errors.Is(err, identity.ErrRefused) {
		t.Fatalf("a revoked key resolves: %v", err)
	}
	if code, _, _ := cli(t, "apps", "disable", app, db); code != 0 {
		t.Fatal("apps disable failed")
	}
	code, list, _ = cli(t, "apps", "list", db)
	if code != 0 || !strings.Contains(list, app) || !strings.Contains(list, "true") {
		t.Fatalf("apps list (%d):\n%s", code, list)
	}
	if code, admin, _ := cli(t, "keys", "create", "--admin", db); code != 0 || !identity.LooksLikeSecret(admin) {
		t.Fatalf("keys create --admin: %d", code)
	}
	for _, bad := range [][]string{
		{"keys", "create", "--app", app, "--supplier", sup, db},
		{"keys", "create", db},
		{"keys", "create", "--app", "app_none", db},
		{"keys", "revoke", "key_none", db},
		{"apps", "create", db},
		{"apps", "launch", db},
		{"keys", "create", "--admin", "--expires", "-1h", db},
	} {
		if code, _, _ := cli(t, bad...); code == 0 {
			t.Errorf("%v succeeded", bad)
		}
	}
}
