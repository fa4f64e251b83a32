package graphql

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMutations: an admin creates an application, a supplier and keys;
// a key works at once, shows in apiKeys without its secret, and stops
// working when revoked or its application is disabled.
func TestMutations(t *testing.T) {
	tn := newTenants(t, Config{})
	srv := tn.srv
	for _, admin := range []string{adminKey, tn.admin2} {
		var app struct {
			CreateApplication struct {
				ID, Name, CreatedAt string
				Disabled            bool
			}
		}
		as(t, srv, admin, `mutation { createApplication(name: "Acme") { id name disabled createdAt } }`, nil, &app)
		a := app.CreateApplication
		if !strings.HasPrefix(a.ID, "app_") || a.Name != "Acme" || a.Disabled || a.CreatedAt == "" {
			t.Fatalf("createApplication: %+v", a)
		}
		var sup struct{ CreateSupplier struct{ ID, Name string } }
		as(t, srv, admin, `mutation { createSupplier(name: "Relays Inc") { id name } }`, nil, &sup)
		if !strings.HasPrefix(sup.CreateSupplier.ID, "sup_") || sup.CreateSupplier.Name != "Relays Inc" {
			t.Fatalf("createSupplier: %+v", sup)
		}
		expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		var nk struct {
			CreateApiKey struct {
				ID, Secret string
				Key        struct {
					ID, Role, Name, ExpiresAt string
					Application               *struct{ ID, Name string }
					Supplier                  *struct{ ID string }
					RevokedAt                 *string
				}
			}
		}
		as(t, srv, admin, `mutation($app: ID, $exp: Time) { createApiKey(role: APPLICATION, application: $app, name: "ci", expiresAt: $exp) {
			id secret key { id role name expiresAt application { id name } supplier { id } revokedAt } } }`,
			map[string]any{"app": a.ID, "exp": expires}, &nk)
		k := nk.CreateApiKey
		if !strings.HasPrefix(k.Secret, "rmk_") || k.ID != k.Key.ID || k.Key.Role != "APPLICATION" || k.Key.Name != "ci" ||
			k.Key.Application == nil || k.Key.Application.Name != "Acme" || k.Key.Supplier != nil || k.Key.RevokedAt != nil || k.Key.ExpiresAt != expires {
			t.Fatalf("createApiKey: %+v", k)
		}
		// The new key works, as its application.
		var v struct{ Viewer struct{ Role, KeyID string } }
		as(t, srv, k.Secret, `{ viewer { role keyId } }`, nil, &v)
		if v.Viewer.Role != "APPLICATION" || v.Viewer.KeyID != k.ID {
			t.Errorf("viewer of the new key: %+v", v)
		}
		// A supplier key.
		var sk struct {
			CreateApiKey struct{ Key struct{ Role string } }
		}
		as(t, srv, admin, `mutation($s: ID) { createApiKey(role: SUPPLIER, supplier: $s) { key { role } } }`,
			map[string]any{"s": sup.CreateSupplier.ID}, &sk)
		if sk.CreateApiKey.Key.Role != "SUPPLIER" {
			t.Errorf("supplier key: %+v", sk)
		}
		// Lists, never with a secret.
		res := post(t, srv, admin, `{ applications { id name } suppliers { id name } apiKeys { id role name lastUsedAt application { id } supplier { id } } }`, nil)
		if len(res.Errors) != 0 || !strings.Contains(string(res.Data), a.ID) || !strings.Contains(string(res.Data), sup.CreateSupplier.ID) ||
			!strings.Contains(string(res.Data), k.ID) || strings.Contains(string(res.Data), k.Secret) || strings.Contains(string(res.Data), "rmk_") {
			t.Errorf("lists: %s %+v", res.Data, res.Errors)
		}
		// Revoked: refused.
		var rv struct {
			RevokeApiKey struct{ ID, RevokedAt string }
		}
		as(t, srv, admin, `mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }`, map[string]any{"id": k.ID}, &rv)
		if rv.RevokeApiKey.ID != k.ID || rv.RevokeApiKey.RevokedAt == "" {
			t.Errorf("revokeApiKey: %+v", rv)
		}
		wantError(t, "revoked key", post(t, srv, k.Secret, `{ viewer { role } }`, nil), http.StatusUnauthorized, CodeUnauthenticated)
		// Disabled application: its keys are refused.
		var nk2 struct{ CreateApiKey struct{ Secret string } }
		as(t, srv, admin, `mutation($app: ID) { createApiKey(role: APPLICATION, application: $app) { secret } }`, map[string]any{"app": a.ID}, &nk2)
		var dis struct{ DisableApplication struct{ Disabled bool } }
		as(t, srv, admin, `mutation($id: ID!) { disableApplication(id: $id) { disabled } }`, map[string]any{"id": a.ID}, &dis)
		if !dis.DisableApplication.Disabled {
			t.Errorf("disableApplication: %+v", dis)
		}
		wantError(t, "key of a disabled application", post(t, srv, nk2.CreateApiKey.Secret, `{ viewer { role } }`, nil),
			http.StatusUnauthorized, CodeUnauthenticated)
	}

	for _, tc := range []struct{ name, q, code string }{
		{"unknown application", `mutation { disableApplication(id: "app_nope") { id } }`, CodeNotFound},
		{"key of an unknown application", `mutation { createApiKey(role: APPLICATION, application: "app_nope") { id } }`, CodeNotFound},
		{"revoke an unknown key", `mutation { revokeApiKey(id: "key_nope") { id } }`, CodeNotFound},
		{"application key without application", `mutation { createApiKey(role: APPLICATION) { id } }`, CodeBadUserInput},
		{"admin key with a supplier", `mutation { createApiKey(role: ADMIN, supplier: "supA") { id } }`, CodeBadUserInput},
		{"expired already", `mutation { createApiKey(role: ADMIN, expiresAt: "2020-01-01T00:00:00Z") { id } }`, CodeBadUserInput},
		{"empty name", `mutation { createApplication(name: " ") { id } }`, CodeBadUserInput},
		{"unknown role", `mutation { createApiKey(role: ROOT) { id } }`, CodeValidationFailed},
	} {
		wantError(t, tc.name, post(t, srv, adminKey, tc.q, nil), http.StatusOK, tc.code)
	}
	// Without a registry, the mutations cannot be served.
	bare := server(t, Config{})
	wantError(t, "no registry", post(t, bare, adminKey, `mutation { createApplication(name: "x") { id } }`, nil), http.StatusOK, CodeUnavailable)
	var v struct {
		Viewer struct {
			Role        string
			Application *struct{ ID string }
		}
	}
	data(t, bare, `{ viewer { role application { id } } }`, nil, &v)
	if v.Viewer.Role != "ADMIN" || v.Viewer.Application != nil {
		t.Errorf("admin viewer: %+v", v)
	}
}

// TestUsageSeries through the API: grouped, windowed in a zone, by method,
// bounded, and its errors.
func TestUsageSeriesAPI(t *testing.T) {
	tn := newTenants(t, Config{MaxUsageRows: 2})
	srv := tn.srv
	type row struct {
		Window                                           *string
		Service, Application, Supplier, Protocol, Method *string
		Messages, Relays, Units, Bytes                   int64
	}
	var got struct {
		UsageSeries struct {
			Rows     []row
			Window   *string
			TimeZone string
			GroupBy  []string
		}
	}
	as(t, srv, adminKey, `{ usageSeries(groupBy: [APPLICATION], window: DAY, timeZone: "Asia/Tokyo") {
		rows { window service application supplier protocol method messages relays units bytes } window timeZone groupBy } }`, nil, &got)
	s := got.UsageSeries
	// 03:00 UTC is noon in Tokyo: the day started at 15:00 UTC the day before.
	if len(s.Rows) != 2 || s.Rows[0].Window == nil || *s.Rows[0].Window != "2026-01-01T15:00:00Z" || s.Rows[0].Application == nil ||
		*s.Rows[0].Application != "app1" || s.Rows[0].Service != nil || s.Rows[0].Method != nil || s.Rows[1].Messages != 110 ||
		s.TimeZone != "Asia/Tokyo" || s.Window == nil || *s.Window != "DAY" || len(s.GroupBy) != 1 {
		t.Errorf("by application and Tokyo day: %+v", s)
	}
	// Without groupBy and window: the totals of usage.
	as(t, srv, adminKey, `{ usageSeries { rows { window messages bytes } timeZone } }`, nil, &got)
	if r := got.UsageSeries.Rows; len(r) != 1 || r[0].Window != nil || r[0].Messages != 111 || r[0].Bytes != 9000000000000044 || got.UsageSeries.TimeZone != "UTC" {
		t.Errorf("totals: %+v", got.UsageSeries)
	}
	// By method, as app1: its stream C's seq 2 never crossed.
	as(t, srv, tn.app1, `{ usageSeries(groupBy: [METHOD], filter: {from: "2026-01-02T00:00:00Z", to: "2026-01-03T00:00:00Z"}) { rows { method messages relays units bytes } } }`, nil, &got)
	if r := got.UsageSeries.Rows; len(r) != 1 || r[0].Method == nil || *r[0].Method != "eth_call" || r[0].Messages != 6 || r[0].Relays != 6 || r[0].Units != 60 {
		t.Errorf("by method: %+v", got.UsageSeries.Rows)
	}
	as(t, srv, tn.app2, `{ usageSeries(groupBy: [METHOD], filter: {from: "2026-01-02T00:00:00Z", to: "2026-01-03T00:00:00Z"}) { rows { method } } }`, nil, &got)
	if len(got.UsageSeries.Rows) != 0 {
		t.Errorf("by method as app2: %+v", got.UsageSeries.Rows)
	}
	for _, tc := range []struct{ name, q, code string }{
		{"over the bound", `{ usageSeries(window: MINUTE) { rows { messages } } }`, CodeResultTooLarge},
		{"over first", `{ usageSeries(groupBy: [APPLICATION], first: 1) { rows { messages } } }`, CodeResultTooLarge},
		{"first above the bound", `{ usageSeries(first: 3) { rows { messages } } }`, CodeBadUserInput},
		{"bad zone", `{ usageSeries(window: DAY, timeZone: "Mars/Olympus") { rows { messages } } }`, CodeBadUserInput},
		{"method without range", `{ usageSeries(groupBy: [METHOD]) { rows { messages } } }`, CodeBadUserInput},
		{"bad group", `{ usageSeries(groupBy: [COLOR]) { rows { messages } } }`, CodeValidationFailed},
	} {
		res := post(t, srv, adminKey, tc.q, nil)
		wantError(t, tc.name, res, http.StatusOK, tc.code)
		if tc.code == CodeResultTooLarge && len(res.Errors) > 0 && !strings.Contains(res.Errors[0].Message, "narrow") {
			t.Errorf("%s: %q", tc.name, res.Errors[0].Message)
		}
	}
}
