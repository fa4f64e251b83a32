package graphql

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/audit"
	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ledger"
)

// fakeWhatIf answers every what-if with one row and records the proposal.
type fakeWhatIf struct {
	got      audit.Proposal
	from, to time.Time
}

func (f *fakeWhatIf) WhatIf(_ context.Context, p audit.Proposal, from, to time.Time) ([]audit.WhatIfRow, error) {
	f.got, f.from, f.to = p, from, to
	if p.Tariff != nil && p.Tariff.Currency == "bad!" {
		return nil, &audit.InvalidProposalError{Reason: "tariff: currency"}
	}
	return []audit.WhatIfRow{{Application: "app1", Now: ledger.Usage{Messages: 4, Relays: 4, Units: 8},
		Proposed:   ledger.Usage{Messages: 4, Relays: 12, Units: 24},
		NowAmounts: []ledger.Amount{{Currency: "upokt", Value: "2"}}, ProposedAmounts: []ledger.Amount{{Currency: "upokt", Value: "6"}}}}, nil
}

func TestWhatIfAndAuditFindings(t *testing.T) {
	pool := seeded(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO audit_runs (id, topic, result) VALUES (7, 'relaymeter.messages.v1', 'differs'), (8, 'relaymeter.messages.v1', 'differs')`,
		`INSERT INTO audit_findings (run_id, kind, table_name, keys, expected, found) VALUES
			(7, 'differs', 'messages', '{"seq": 2}', '{"units": 5}', '{"units": 6}'),
			(7, 'missing', 'messages', '{"seq": 3}', '{"units": 1}', NULL),
			(8, 'extra', 'usage_minutes', '{"minute": "x"}', NULL, '{"units": 9}')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	reg := identity.NewRegistry(pool)
	if _, err := pool.Exec(ctx, `INSERT INTO applications (id, name) VALUES ('app1', 'One')`); err != nil {
		t.Fatal(err)
	}
	appKey, _, err := reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: "app1"})
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeWhatIf{}
	srv := serve(t, pool, Config{Keys: reg, Registry: reg, WhatIf: fake, RateLimit: -1})

	// auditFindings: a connection, filtered, pages in order.
	var af struct {
		AuditFindings struct {
			Edges []struct {
				Node struct {
					Run, Kind, Table string
					Keys             json.RawMessage
					Expected, Found  json.RawMessage
				}
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   string
			}
		}
	}
	data(t, srv, `{ auditFindings(first: 1, filter: {run: "7", table: "messages"}) { edges { node { run kind table keys expected found } } pageInfo { hasNextPage endCursor } } }`, nil, &af)
	if e := af.AuditFindings.Edges; len(e) != 1 || e[0].Node.Kind != "differs" || e[0].Node.Run != "7" ||
		string(e[0].Node.Keys) != `{"seq":2}` || string(e[0].Node.Expected) != `{"units":5}` || string(e[0].Node.Found) != `{"units":6}` ||
		!af.AuditFindings.PageInfo.HasNextPage {
		t.Fatalf("auditFindings page 1: %+v", af)
	}
	data(t, srv, `query($after: String) { auditFindings(first: 5, after: $after, filter: {run: "7"}) { edges { node { run kind table keys expected found } } pageInfo { hasNextPage endCursor } } }`,
		map[string]any{"after": af.AuditFindings.PageInfo.EndCursor}, &af)
	if e := af.AuditFindings.Edges; len(e) != 1 || e[0].Node.Kind != "missing" || string(e[0].Node.Found) != "null" || af.AuditFindings.PageInfo.HasNextPage {
		t.Fatalf("auditFindings page 2: %+v", af)
	}
	data(t, srv, `{ auditFindings(filter: {kind: "extra"}) { edges { node { run table } } } }`, nil, &af)
	if e := af.AuditFindings.Edges; len(e) != 1 || e[0].Node.Run != "8" || e[0].Node.Table != "usage_minutes" {
		t.Fatalf("auditFindings of kind extra: %+v", af)
	}
	wantError(t, "auditFindings as an application", post(t, srv, appKey, `{ auditFindings { edges { node { id } } } }`, nil), http.StatusOK, CodeForbidden)
	wantError(t, "auditFindings of run x", post(t, srv, adminKey, `{ auditFindings(filter: {run: "x"}) { edges { node { id } } } }`, nil), http.StatusOK, CodeBadUserInput)

	// whatIf: the proposal as given, the rows as the what-if answers.
	var wi struct {
		WhatIf []struct {
			Application   string
			Now, Proposed struct {
				Messages, Relays, Units int64
				Amount                  []struct{ Currency, Value string }
			}
		}
	}
	data(t, srv, `{ whatIf(service: "eth", policy: {name: "method", version: 1, params: {default: 3}}, from: "2026-11-01T12:00:00Z", to: "2026-11-01T13:00:00Z") {
		application now { messages relays units amount { currency value } } proposed { messages relays units amount { currency value } } } }`, nil, &wi)
	if p := fake.got.Policy; p == nil || p.Name != "method" || p.Version != 1 || string(p.Params) != `{"default":3}` || fake.got.Tariff != nil ||
		fake.got.Service != "eth" || !fake.from.Equal(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("whatIf passed %+v %+v, from %v", fake.got, p, fake.from)
	}
	if len(wi.WhatIf) != 1 || wi.WhatIf[0].Now.Units != 8 || wi.WhatIf[0].Proposed.Relays != 12 ||
		wi.WhatIf[0].Proposed.Amount[0].Value != "6" || wi.WhatIf[0].Now.Amount[0].Value != "2" {
		t.Errorf("whatIf: %+v", wi)
	}
	data(t, srv, `{ whatIf(service: "eth", tariff: {pricePerUnit: "0.5", currency: "upokt"}, from: "2026-11-01T12:00:00Z", to: "2026-11-01T13:00:00Z") { application } }`, nil, &wi)
	if tr := fake.got.Tariff; tr == nil || tr.PricePerUnit != "0.5" || tr.Currency != "upokt" || fake.got.Policy != nil {
		t.Errorf("whatIf tariff passed %+v", fake.got)
	}
	const bad = `{ whatIf(service: "eth", tariff: {pricePerUnit: "1", currency: "bad!"}, from: "2026-11-01T12:00:00Z", to: "2026-11-01T13:00:00Z") { application } }`
	wantError(t, "whatIf refused", post(t, srv, adminKey, bad, nil), http.StatusOK, CodeBadUserInput)
	wantError(t, "whatIf as an application", post(t, srv, appKey, bad, nil), http.StatusOK, CodeForbidden)
	bare := serve(t, pool, Config{})
	wantError(t, "whatIf without Kafka", post(t, bare, adminKey, bad, nil), http.StatusOK, CodeUnavailable)
}
