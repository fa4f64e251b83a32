package graphql

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ledger"
)

// tenants is the seeded API served with a registry whose applications and
// suppliers are the ids the seeded rows name, and a key of each role.
type tenants struct {
	srv                               *httptest.Server
	reg                               *identity.Registry
	app1, app2, supA, revoked, admin2 string // secrets
}

func newTenants(t *testing.T, cfg Config) *tenants {
	t.Helper()
	pool := seeded(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO applications (id, name) VALUES ('app1', 'One'), ('app2', 'Two')`,
		`INSERT INTO suppliers (id, name) VALUES ('supA', 'Supplier A'), ('supB', 'Supplier B')`,
		// A finding of no stream: admins only.
		`INSERT INTO findings (kind, detail) VALUES ('undecodable', 'bad record')`,
		`UPDATE streams SET api_key_id = 'key_opener' WHERE stream_id = '` + streamA + `'`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	reg := identity.NewRegistry(pool)
	key := func(spec identity.NewKey) string {
		secret, _, err := reg.CreateKey(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	tn := &tenants{reg: reg,
		app1:   key(identity.NewKey{Role: identity.RoleApplication, Application: "app1"}),
		app2:   key(identity.NewKey{Role: identity.RoleApplication, Application: "app2"}),
		supA:   key(identity.NewKey{Role: identity.RoleSupplier, Supplier: "supA"}),
		admin2: key(identity.NewKey{Role: identity.RoleAdmin, Name: "ops"}),
	}
	revoked, rk, err := reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: "app1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.RevokeKey(ctx, rk.ID); err != nil {
		t.Fatal(err)
	}
	tn.revoked = revoked
	cfg.Keys, cfg.Registry = reg, reg
	if cfg.RateLimit == 0 {
		cfg.RateLimit = -1 // these tests send many requests at once
	}
	tn.srv = serve(t, pool, cfg)
	return tn
}

// as posts a query with key and decodes its data into v; it fails the
// test on any error.
func as(t *testing.T, srv *httptest.Server, key, query string, vars map[string]any, v any) {
	t.Helper()
	res := post(t, srv, key, query, vars)
	if res.Status != http.StatusOK || len(res.Errors) != 0 {
		t.Fatalf("%s: status %d, errors %+v", query, res.Status, res.Errors)
	}
	if err := json.Unmarshal(res.Data, v); err != nil {
		t.Fatalf("%s: %v in %s", query, err, res.Data)
	}
}

// TestTenancy asks every root field as each role: each sees its own rows,
// and another's are answered as rows that do not exist.
func TestTenancy(t *testing.T) {
	tn := newTenants(t, Config{})
	srv := tn.srv
	type usage struct{ Messages int64 }
	usageOf := func(key string, filter map[string]any) int64 {
		var got struct{ Usage usage }
		as(t, srv, key, `query($f: UsageFilter) { usage(filter: $f) { messages } }`, map[string]any{"f": filter}, &got)
		return got.Usage.Messages
	}
	ids := func(key, query string) []string {
		var got map[string]struct {
			Edges []struct {
				Node struct{ ID, StreamID, Detail string }
			}
		}
		as(t, srv, key, query, nil, &got)
		var out []string
		for _, c := range got {
			for _, e := range c.Edges {
				out = append(out, e.Node.ID[len(e.Node.ID)-1:]+e.Node.StreamID+e.Node.Detail)
			}
		}
		return out
	}
	for _, tc := range []struct {
		role, key            string
		usage, usageOfApp2   int64
		streams              []string
		relays               int
		streamA, streamB     bool
		findings             int
		viewerRole, viewerOf string
	}{
		{"admin", adminKey, 111, 110, []string{"a", "b", "c"}, 6, true, true, 3, "ADMIN", ""},
		{"registry admin", tn.admin2, 111, 110, []string{"a", "b", "c"}, 6, true, true, 3, "ADMIN", ""},
		{"app1", tn.app1, 1, 0, []string{"a", "c"}, 6, true, false, 2, "APPLICATION", "One"},
		{"app2", tn.app2, 110, 110, []string{"b"}, 0, false, true, 0, "APPLICATION", "Two"},
		{"supA", tn.supA, 101, 100, []string{"a", "c"}, 6, true, false, 2, "SUPPLIER", "Supplier A"},
	} {
		if got := usageOf(tc.key, nil); got != tc.usage {
			t.Errorf("%s: usage %d, want %d", tc.role, got, tc.usage)
		}
		// Another application's usage reads as an unknown application's.
		if got := usageOf(tc.key, map[string]any{"application": "app2"}); got != tc.usageOfApp2 {
			t.Errorf("%s: usage of app2 %d, want %d", tc.role, got, tc.usageOfApp2)
		}
		if got := usageOf(tc.key, map[string]any{"application": "app_nope"}); got != 0 {
			t.Errorf("%s: usage of an unknown application %d", tc.role, got)
		}
		streams := ids(tc.key, `{ streams { edges { node { id } } } }`)
		sortStrings(streams)
		if !reflect.DeepEqual(streams, nilIfEmpty(tc.streams)) {
			t.Errorf("%s: streams %v, want %v", tc.role, streams, tc.streams)
		}
		if got := ids(tc.key, `{ relays(first: 100) { edges { node { id } } } }`); len(got) != tc.relays {
			t.Errorf("%s: %d relays, want %d", tc.role, len(got), tc.relays)
		}
		// Asking by another's stream id finds nothing either.
		if got := ids(tc.key, `{ relays(filter: {stream: "`+streamA+`"}) { edges { node { id } } } }`); (len(got) > 0) != tc.streamA {
			t.Errorf("%s: relays of stream A %v", tc.role, got)
		}
		for id, want := range map[string]bool{streamA: tc.streamA, streamB: tc.streamB} {
			var got struct {
				Stream *struct {
					ID       string
					Messages struct {
						Edges []struct{ Node struct{ Seq int64 } }
					}
				}
			}
			as(t, srv, tc.key, `query($id: ID!) { stream(id: $id) { id messages { edges { node { seq } } } } }`, map[string]any{"id": id}, &got)
			if (got.Stream != nil) != want {
				t.Errorf("%s: stream %s: %+v, want visible %v", tc.role, id, got.Stream, want)
			}
			if got.Stream != nil && id == streamA && len(got.Stream.Messages.Edges) != 5 {
				t.Errorf("%s: stream A has %d messages", tc.role, len(got.Stream.Messages.Edges))
			}
		}
		if got := ids(tc.key, `{ findings { edges { node { id detail } } } }`); len(got) != tc.findings {
			t.Errorf("%s: findings %v, want %d", tc.role, got, tc.findings)
		}
		var svc struct{ Services []struct{ ID string } }
		as(t, srv, tc.key, `{ services { id } }`, nil, &svc)
		if len(svc.Services) != 1 {
			t.Errorf("%s: services %+v", tc.role, svc)
		}
		var v struct {
			Viewer struct {
				Role        string
				KeyID       string
				Application *struct{ ID, Name string }
				Supplier    *struct{ ID, Name string }
			}
		}
		as(t, srv, tc.key, `{ viewer { role keyId application { id name } supplier { id name } } }`, nil, &v)
		owner := ""
		if v.Viewer.Application != nil {
			owner = v.Viewer.Application.Name
		}
		if v.Viewer.Supplier != nil {
			owner += v.Viewer.Supplier.Name
		}
		if v.Viewer.Role != tc.viewerRole || owner != tc.viewerOf || v.Viewer.KeyID == "" {
			t.Errorf("%s: viewer %+v", tc.role, v.Viewer)
		}
		var series struct {
			UsageSeries struct {
				Rows []struct {
					Application *string
					Messages    int64
				}
			}
		}
		as(t, srv, tc.key, `{ usageSeries(groupBy: [APPLICATION]) { rows { application messages } } }`, nil, &series)
		var total int64
		for _, r := range series.UsageSeries.Rows {
			total += r.Messages
		}
		if total != tc.usage {
			t.Errorf("%s: usageSeries sums %d, want %d: %+v", tc.role, total, tc.usage, series)
		}
		admin := tc.viewerRole == "ADMIN"
		res := post(t, srv, tc.key, `{ quarantine { edges { node { offset } } } }`, nil)
		if admin && (len(res.Errors) != 0 || !strings.Contains(string(res.Data), `"offset":7`)) {
			t.Errorf("%s: quarantine %s %+v", tc.role, res.Data, res.Errors)
		}
		if !admin {
			wantError(t, tc.role+": quarantine", res, http.StatusOK, CodeForbidden)
		}
		for _, q := range []string{`{ applications { id } }`, `{ suppliers { id } }`, `{ apiKeys { id } }`,
			`mutation { createApplication(name: "x") { id } }`, `mutation { revokeApiKey(id: "key_x") { id } }`} {
			res := post(t, srv, tc.key, q, nil)
			if admin && len(res.Errors) > 0 && res.Errors[0].Extensions.Code == CodeForbidden {
				t.Errorf("%s: %s forbidden", tc.role, q)
			}
			if !admin {
				wantError(t, tc.role+": "+q, res, http.StatusOK, CodeForbidden)
			}
		}
	}

	// The key that opened a stream, null with open access.
	var st struct {
		A, B struct{ APIKeyID *string }
	}
	as(t, srv, adminKey, `{ a: stream(id: "`+streamA+`") { apiKeyId } b: stream(id: "`+streamB+`") { apiKeyId } }`, nil, &st)
	if st.A.APIKeyID == nil || *st.A.APIKeyID != "key_opener" || st.B.APIKeyID != nil {
		t.Errorf("apiKeyId: %+v", st)
	}

	// A revoked key, an unknown one: 401 for every field.
	for _, q := range []string{`{ usage { messages } }`, `{ viewer { role } }`, `{ streams { edges { cursor } } }`} {
		wantError(t, "revoked: "+q, post(t, srv, tn.revoked, q, nil), http.StatusUnauthorized, CodeUnauthenticated)
		wantError(t, "unknown: "+q, post(t, srv, "rmk_"+strings.Repeat("0", 64), q, nil), http.StatusUnauthorized, CodeUnauthenticated)
	}
}

// TestNoPrincipalSeesNothing: a resolver called with a context that holds
// no caller (as a subscription might) answers as for a caller who may see
// nothing.
func TestNoPrincipalSeesNothing(t *testing.T) {
	pool := seeded(t)
	r := &resolver{store: ledger.New(pool), maxRows: 10}
	ctx := context.Background()
	u, err := r.Usage(ctx, struct{ Filter *usageFilterInput }{})
	if err != nil || u.u != (ledger.Usage{}) {
		t.Errorf("usage: %+v, %v", u, err)
	}
	all, err := r.Usage(withPrincipal(ctx, identity.Principal{Role: identity.RoleAdmin}), struct{ Filter *usageFilterInput }{})
	if err != nil || all.u.Messages != 111 {
		t.Errorf("usage as admin: %+v, %v", all, err)
	}
	app := "app2"
	own, err := r.Usage(withPrincipal(ctx, identity.Principal{Role: identity.RoleApplication, Application: "app1"}),
		struct{ Filter *usageFilterInput }{&usageFilterInput{Application: &app}})
	if err != nil || own.u.Messages != 0 {
		t.Errorf("usage of app2 as app1: %+v, %v", own, err)
	}
	// A key of a role without its owner sees nothing either.
	if s := scopeOf(identity.Principal{Role: identity.RoleApplication}); !s.Empty() {
		t.Errorf("application key without application: %+v", s)
	}
	streams, err := r.Streams(ctx, struct {
		First  *int32
		After  *string
		Filter *streamFilterInput
	}{})
	if err != nil || len(streams.edges) != 0 {
		t.Errorf("streams: %v, %v", streams, err)
	}
	svc, err := r.Services(ctx)
	if err != nil || len(svc) != 0 {
		t.Errorf("services: %v, %v", svc, err)
	}
	if _, err := r.Viewer(ctx); err != errForbidden {
		t.Errorf("viewer: %v", err)
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}
