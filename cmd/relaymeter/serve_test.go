package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/graphql"
	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/ledger"
)

// TestServeAPIKeys: the API serve and dev build takes the registry's keys
// beside the admin key, serves the admin mutations, and limits each key's
// rate as its flags say.
func TestServeAPIKeys(t *testing.T) {
	pool, _ := pgtest.DB(t)
	ctx := context.Background()
	reg := identity.NewRegistry(pool)
	app, err := reg.CreateApplication(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: app.ID})
	if err != nil {
		t.Fatal(err)
	}
	h, err := graphql.NewHandler(apiConfig(ledger.New(pool), "the-admin-key", nil, testLogger(t), 0.1, 1))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ask := func(key, query string) (int, string) {
		body, _ := json.Marshal(map[string]string{"query": query})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/graphql", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := ask(secret, `{ viewer { role application { name } } }`); code != http.StatusOK ||
		body != `{"data":{"viewer":{"role":"APPLICATION","application":{"name":"Acme"}}}}` {
		t.Errorf("registry key: %d %s", code, body)
	}
	// Burst 1: the key's second request is refused.
	if code, body := ask(secret, `{ viewer { role } }`); code != http.StatusTooManyRequests || !strings.Contains(body, "RATE_LIMITED") {
		t.Errorf("second request: %d %s", code, body)
	}
	if code, body := ask("the-admin-key", `mutation { createSupplier(name: "S") { name } }`); code != http.StatusOK ||
		body != `{"data":{"createSupplier":{"name":"S"}}}` {
		t.Errorf("admin mutation: %d %s", code, body)
	}
}

// TestServeRateFlags: serve refuses a rate flag that is not a number.
func TestServeRateFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runServe(context.Background(), []string{"--api-rate", "fast", "--admin-key", "k"}, stdio{out: &out, err: &errOut})
	if err == nil || !strings.Contains(errOut.String(), "api-rate") {
		t.Errorf("--api-rate fast: %v, %s", err, errOut.String())
	}
}
