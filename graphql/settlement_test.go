package graphql

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	gql "github.com/graph-gophers/graphql-go"

	"github.com/relaymeter/relaymeter/chain"
	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/internal/settletest"
	"github.com/relaymeter/relaymeter/ledger"
)

// settledAPI is the API over settletest's ledger, with a key of each
// tenant of it.
type settledAPI struct {
	srv                    *httptest.Server
	l                      *settletest.Ledger
	app1, app2, supA, supB string // secrets
}

func newSettledAPI(t *testing.T) *settledAPI {
	t.Helper()
	pool, _ := pgtest.DB(t)
	l := settletest.New(t, pool)
	ctx := context.Background()
	reg := identity.NewRegistry(pool)
	for _, q := range []string{
		`INSERT INTO applications (id, name) VALUES ('app1', 'One'), ('app2', 'Two')`,
		`INSERT INTO suppliers (id, name) VALUES ('supA', 'Supplier A'), ('supB', 'Supplier B')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	key := func(spec identity.NewKey) string {
		secret, _, err := reg.CreateKey(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	return &settledAPI{l: l, srv: serve(t, pool, Config{Keys: reg, Registry: reg, RateLimit: -1}),
		app1: key(identity.NewKey{Role: identity.RoleApplication, Application: "app1"}),
		app2: key(identity.NewKey{Role: identity.RoleApplication, Application: "app2"}),
		supA: key(identity.NewKey{Role: identity.RoleSupplier, Supplier: "supA"}),
		supB: key(identity.NewKey{Role: identity.RoleSupplier, Supplier: "supB"}),
	}
}

// sessionOf is the id of the fixture's session of (window start, app,
// supplier).
func (a *settledAPI) sessionOf(start int64, app, supplier string) string {
	return ledger.SessionKey(chain.SessionID(a.l.Clock.Hash(start), "eth", app, start), supplier)
}

type gqlSession struct {
	ID, SessionID, Application, Service, Supplier string
	StartHeight, EndHeight                        int64
	State                                         string
	StartsAt                                      string
	EndsAt, SettledAt                             *string
	Relays, Units                                 int64
	Amount                                        string
	Currency                                      *string
	Payouts                                       []struct{ Kind, Gross string }
}

const sessionFields = `id sessionId application service supplier startHeight endHeight state startsAt endsAt settledAt
	relays units amount currency payouts { kind gross }`

// TestSessionsQuery: sessions and session(id) answer the ledger's sessions
// with every field, paging over the open, closed and settled ones alike.
func TestSessionsQuery(t *testing.T) {
	a := newSettledAPI(t)
	var got struct {
		Sessions struct {
			Edges []struct {
				Cursor string
				Node   gqlSession
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
		}
	}
	as(t, a.srv, adminKey, `{ sessions(first: 3) { edges { cursor node { `+sessionFields+` } } pageInfo { hasNextPage endCursor } } }`, nil, &got)
	e := got.Sessions.Edges
	if len(e) != 3 || !got.Sessions.PageInfo.HasNextPage || *got.Sessions.PageInfo.EndCursor != e[2].Cursor {
		t.Fatalf("first page: %+v", got.Sessions)
	}
	upokt := "upokt"
	open := gqlSession{ID: a.sessionOf(9, "app1", "supB"), SessionID: chain.SessionID(a.l.Clock.Hash(9), "eth", "app1", 9),
		Application: "app1", Service: "eth", Supplier: "supB", StartHeight: 9, EndHeight: 10, State: "OPEN",
		StartsAt: "2026-03-01T12:01:20Z", Relays: 1, Units: 1, Amount: "2", Currency: &upokt, Payouts: []struct{ Kind, Gross string }{}}
	if !reflect.DeepEqual(e[0].Node, open) {
		t.Errorf("open session:\n%+v\nwant\n%+v", e[0].Node, open)
	}
	if n := e[1].Node; n.State != "CLOSED" || n.StartHeight != 7 || n.EndsAt == nil || *n.EndsAt != "2026-03-01T12:01:20Z" ||
		n.SettledAt != nil || n.Relays != 2 || n.Amount != "4" || len(n.Payouts) != 0 {
		t.Errorf("closed session: %+v", n)
	}
	// W5's session of app2/supA, settled at G+1007s.
	if n := e[2].Node; n.State != "SETTLED" || n.ID != a.sessionOf(5, "app2", "supA") || n.SettledAt == nil ||
		*n.SettledAt != "2026-03-01T12:16:47Z" || n.Amount != "3" ||
		!reflect.DeepEqual(n.Payouts, []struct{ Kind, Gross string }{{"SETTLEMENT", "3"}}) {
		t.Errorf("settled session: %+v", n)
	}
	// The rest, from the cursor.
	var rest struct {
		Sessions struct {
			Edges    []struct{ Node gqlSession }
			PageInfo struct{ HasNextPage bool }
		}
	}
	as(t, a.srv, adminKey, `query($after: String) { sessions(first: 100, after: $after) { edges { node { `+sessionFields+` } } pageInfo { hasNextPage } } }`,
		map[string]any{"after": e[2].Cursor}, &rest)
	if len(rest.Sessions.Edges) != 5 || rest.Sessions.PageInfo.HasNextPage {
		t.Fatalf("rest: %+v", rest.Sessions)
	}
	// The session of app1/supA in W5 has no relays, only the adjustment
	// of its late relay, and no currency of its own.
	if n := rest.Sessions.Edges[0].Node; n.ID != a.sessionOf(5, "app1", "supA") || n.Relays != 0 || n.Amount != "0" ||
		n.Currency != nil || !reflect.DeepEqual(n.Payouts, []struct{ Kind, Gross string }{{"ADJUSTMENT", "20"}}) {
		t.Errorf("W5 app1/supA: %+v", n)
	}
	if n := rest.Sessions.Edges[4].Node; n.StartHeight != 1 || n.Relays != 4 || n.Units != 40 || n.Amount != "80" ||
		n.StartsAt != "2026-03-01T12:00:00Z" {
		t.Errorf("W1: %+v", n)
	}

	var filtered struct {
		Sessions struct {
			Edges []struct{ Node struct{ ID, State string } }
		}
	}
	as(t, a.srv, adminKey, `{ sessions(filter: {state: SETTLED, supplier: "supA", from: "2026-03-01T12:00:20Z", to: "2026-03-01T12:00:40Z"}) { edges { node { id state } } } }`, nil, &filtered)
	if len(filtered.Sessions.Edges) != 2 {
		t.Errorf("W3's settled sessions of supA: %+v", filtered)
	}
	as(t, a.srv, adminKey, `{ sessions(filter: {state: CLOSED}) { edges { node { id state } } } }`, nil, &filtered)
	if len(filtered.Sessions.Edges) != 1 || filtered.Sessions.Edges[0].Node.ID != a.sessionOf(7, "app1", "supB") {
		t.Errorf("closed sessions: %+v", filtered)
	}

	var one struct{ S, Open, None *gqlSession }
	as(t, a.srv, adminKey, `query($s: ID!, $o: ID!, $n: ID!) { s: session(id: $s) { `+sessionFields+` }
		open: session(id: $o) { `+sessionFields+` } none: session(id: $n) { id } }`,
		map[string]any{"s": a.sessionOf(1, "app1", "supA"), "o": open.ID, "n": a.sessionOf(1, "app2", "supB")}, &one)
	if one.S == nil || !reflect.DeepEqual(*one.S, rest.Sessions.Edges[4].Node) || one.Open == nil || !reflect.DeepEqual(*one.Open, open) || one.None != nil {
		t.Errorf("session(id): %+v %+v %+v", one.S, one.Open, one.None)
	}
}

// TestLedgerQueries: payouts, accounts, balance and transactions as an
// admin sees them.
func TestLedgerQueries(t *testing.T) {
	a := newSettledAPI(t)
	var p struct {
		Payouts struct {
			Edges []struct {
				Node struct {
					ID                                   string
					Seq                                  int64
					Kind, Application, Service, Supplier string
					Gross, Fee, SupplierAmount, Currency string
					PostedAt                             string
					Session                              *struct{ ID, State string }
					Transaction                          struct{ Seq int64 }
				}
			}
			PageInfo struct{ HasNextPage bool }
		}
	}
	as(t, a.srv, adminKey, `{ payouts(filter: {application: "app1"}, first: 2) { edges { node { id seq kind application service supplier
		gross fee supplierAmount currency postedAt session { id state } transaction { seq } } } pageInfo { hasNextPage } } }`, nil, &p)
	e := p.Payouts.Edges
	if len(e) != 2 || !p.Payouts.PageInfo.HasNextPage {
		t.Fatalf("payouts: %+v", p)
	}
	if n := e[0].Node; n.Seq != 5 || n.Kind != "SETTLEMENT" || n.Application != "app1" || n.Service != "eth" || n.Supplier != "supB" ||
		n.Gross != "2" || n.Fee != "0.2" || n.SupplierAmount != "1.8" || n.Currency != "upokt" || n.PostedAt != "2026-03-01T12:16:47Z" ||
		n.Session == nil || n.Session.ID != a.sessionOf(5, "app1", "supB") || n.Session.State != "SETTLED" || n.Transaction.Seq != 5 {
		t.Errorf("payout 5: %+v", n)
	}
	if n := e[1].Node; n.Seq != 4 || n.Kind != "ADJUSTMENT" || n.Gross != "20" || n.Session.ID != a.sessionOf(5, "app1", "supA") {
		t.Errorf("payout 4: %+v", n)
	}
	var kinds struct {
		Payouts struct {
			Edges []struct{ Node struct{ Seq int64 } }
		}
	}
	as(t, a.srv, adminKey, `{ payouts(filter: {kind: ADJUSTMENT}) { edges { node { seq } } } }`, nil, &kinds)
	if len(kinds.Payouts.Edges) != 1 || kinds.Payouts.Edges[0].Node.Seq != 4 {
		t.Errorf("adjustments: %+v", kinds)
	}

	var acc struct {
		Accounts struct {
			Edges []struct {
				Node struct{ ID, Kind, Owner, Currency, Balance string }
			}
		}
		Balance, Before, Nobody *struct{ Account, Currency, Value, At string }
	}
	as(t, a.srv, adminKey, `{ accounts { edges { node { id kind owner currency balance } } }
		balance(account: "supplier:supA:upokt") { account currency value at }
		before: balance(account: "supplier:supA:upokt", at: "2026-03-01T12:16:46Z") { account currency value at }
		nobody: balance(account: "supplier:nobody:upokt") { value } }`, nil, &acc)
	var lines []string
	for _, e := range acc.Accounts.Edges {
		lines = append(lines, e.Node.ID+" "+e.Node.Kind+" "+e.Node.Owner+" "+e.Node.Currency+" "+e.Node.Balance)
	}
	want := []string{
		"application:app1:upokt APPLICATION app1 upokt -122",
		"application:app2:upokt APPLICATION app2 upokt -9",
		"fees:eth:upokt FEES eth upokt 13.1",
		"supplier:supA:upokt SUPPLIER supA upokt 116.1",
		"supplier:supB:upokt SUPPLIER supB upokt 1.8",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("accounts:\n%s", strings.Join(lines, "\n"))
	}
	if b := acc.Balance; b == nil || b.Value != "116.1" || b.Account != "supplier:supA:upokt" || b.Currency != "upokt" || b.At == "" {
		t.Errorf("balance: %+v", b)
	}
	if b := acc.Before; b == nil || b.Value != "95.4" || b.At != "2026-03-01T12:16:46Z" {
		t.Errorf("balance before W5: %+v", b)
	}
	if acc.Nobody != nil {
		t.Errorf("balance of no account: %+v", acc.Nobody)
	}

	var txs struct {
		Transactions struct {
			Edges []struct {
				Node struct {
					ID             string
					Seq            int64
					Kind, PostedAt string
					Session        *struct{ ID string }
					Reverses       *string
					PrevHash, Hash string
					Entries        []struct{ Account, Amount string }
				}
			}
		}
	}
	as(t, a.srv, adminKey, `{ transactions(first: 10) { edges { node { id seq kind postedAt session { id } reverses prevHash hash
		entries { account amount } } } } }`, nil, &txs)
	te := txs.Transactions.Edges
	if len(te) != 6 || te[0].Node.PrevHash != strings.Repeat("0", 64) {
		t.Fatalf("transactions: %+v", te)
	}
	for i := 1; i < len(te); i++ {
		if te[i].Node.Seq != int64(i+1) || te[i].Node.PrevHash != te[i-1].Node.Hash || len(te[i].Node.Hash) != 64 {
			t.Errorf("transaction %d: seq %d prev %s, hash before %s", i, te[i].Node.Seq, te[i].Node.PrevHash, te[i-1].Node.Hash)
		}
	}
	n := te[3].Node
	if n.Kind != "ADJUSTMENT" || n.Session == nil || n.Session.ID != a.sessionOf(5, "app1", "supA") || n.Reverses != nil ||
		!reflect.DeepEqual(n.Entries, []struct{ Account, Amount string }{{"application:app1:upokt", "-20"},
			{"fees:eth:upokt", "2"}, {"supplier:supA:upokt", "18"}}) {
		t.Errorf("transaction 4: %+v", n)
	}
	var byAccount struct {
		Transactions struct {
			Edges []struct{ Node struct{ Seq int64 } }
		}
	}
	as(t, a.srv, adminKey, `{ transactions(filter: {account: "supplier:supB:upokt"}) { edges { node { seq } } } }`, nil, &byAccount)
	if len(byAccount.Transactions.Edges) != 1 || byAccount.Transactions.Edges[0].Node.Seq != 5 {
		t.Errorf("supB's transactions: %+v", byAccount)
	}
}

// TestSettlementRoles: each role sees its own sessions, payouts, accounts
// and transactions; another's read as what does not exist.
func TestSettlementRoles(t *testing.T) {
	a := newSettledAPI(t)
	const q = `query($s: ID!) {
		sessions(first: 100) { edges { node { id } } }
		session(id: $s) { id }
		payouts(first: 100) { edges { node { seq } } }
		accounts { edges { node { id } } }
		app1: balance(account: "application:app1:upokt") { value }
		fees: balance(account: "fees:eth:upokt") { value }
		transactions(first: 100) { edges { node { seq entries { account } } } } }`
	type view struct {
		sessions     int
		session      bool // W1's session of app1/supA
		payouts      []int64
		accounts     []string
		app1, fees   bool
		transactions []int64
	}
	for _, tc := range []struct {
		role, key string
		want      view
	}{
		{"admin", adminKey, view{8, true, []int64{6, 5, 4, 3, 2, 1},
			[]string{"application:app1:upokt", "application:app2:upokt", "fees:eth:upokt", "supplier:supA:upokt", "supplier:supB:upokt"},
			true, true, []int64{1, 2, 3, 4, 5, 6}}},
		{"app1", a.app1, view{6, true, []int64{5, 4, 2, 1}, []string{"application:app1:upokt"}, true, false, []int64{1, 2, 4, 5}}},
		{"app2", a.app2, view{2, false, []int64{6, 3}, []string{"application:app2:upokt"}, false, false, []int64{3, 6}}},
		{"supA", a.supA, view{5, true, []int64{6, 4, 3, 2, 1}, []string{"supplier:supA:upokt"}, false, false, []int64{1, 2, 3, 4, 6}}},
		{"supB", a.supB, view{3, false, []int64{5}, []string{"supplier:supB:upokt"}, false, false, []int64{5}}},
	} {
		var got struct {
			Sessions struct {
				Edges []struct{ Node struct{ ID string } }
			}
			Session *struct{ ID string }
			Payouts struct {
				Edges []struct{ Node struct{ Seq int64 } }
			}
			Accounts struct {
				Edges []struct{ Node struct{ ID string } }
			}
			App1         *struct{ Value string }
			Fees         *struct{ Value string }
			Transactions struct {
				Edges []struct {
					Node struct {
						Seq     int64
						Entries []struct{ Account string }
					}
				}
			}
		}
		as(t, a.srv, tc.key, q, map[string]any{"s": a.sessionOf(1, "app1", "supA")}, &got)
		v := view{sessions: len(got.Sessions.Edges), session: got.Session != nil, app1: got.App1 != nil, fees: got.Fees != nil}
		for _, e := range got.Payouts.Edges {
			v.payouts = append(v.payouts, e.Node.Seq)
		}
		for _, e := range got.Accounts.Edges {
			v.accounts = append(v.accounts, e.Node.ID)
		}
		for _, e := range got.Transactions.Edges {
			v.transactions = append(v.transactions, e.Node.Seq)
			// Each transaction is whole: the application's, the
			// supplier's and the fees' entries.
			if len(e.Node.Entries) != 3 {
				t.Errorf("%s: transaction %d has entries %+v", tc.role, e.Node.Seq, e.Node.Entries)
			}
		}
		if !reflect.DeepEqual(v, tc.want) {
			t.Errorf("%s sees\n%+v\nwant\n%+v", tc.role, v, tc.want)
		}
	}

	// A filter naming another tenant finds nothing.
	for _, q := range []string{
		`{ sessions(filter: {application: "app1"}) { edges { node { id } } } }`,
		`{ payouts(filter: {application: "app1"}) { edges { node { seq } } } }`,
		`{ accounts(filter: {owner: "app1"}) { edges { node { id } } } }`,
		`{ transactions(filter: {account: "application:app1:upokt"}) { edges { node { seq } } } }`,
	} {
		res := post(t, a.srv, a.app2, q, nil)
		if res.Status != http.StatusOK || len(res.Errors) != 0 || strings.Contains(string(res.Data), "node") {
			t.Errorf("app2: %s: %s %+v", q, res.Data, res.Errors)
		}
	}
}

// TestSettlementNoPrincipal: resolvers called without a caller see
// nothing.
func TestSettlementNoPrincipal(t *testing.T) {
	pool, _ := pgtest.DB(t)
	l := settletest.New(t, pool)
	r := &resolver{store: l.Store, maxRows: 10}
	ctx := context.Background()
	type page = struct {
		Filter *sessionFilterInput
		First  *int32
		After  *string
	}
	s, err := r.Sessions(ctx, page{})
	if err != nil || len(s.edges) != 0 {
		t.Errorf("sessions: %+v, %v", s, err)
	}
	admin := withPrincipal(ctx, identity.Principal{Role: identity.RoleAdmin})
	if s, err := r.Sessions(admin, page{}); err != nil || len(s.edges) != 8 {
		t.Errorf("sessions as admin: %d, %v", len(s.edges), err)
	}
	one, err := r.Session(ctx, struct{ ID gql.ID }{gql.ID(ledger.SessionKey(chain.SessionID(l.Clock.Hash(1), "eth", "app1", 1), "supA"))})
	if err != nil || one != nil {
		t.Errorf("session: %+v, %v", one, err)
	}
	p, err := r.Payouts(ctx, struct {
		Filter *payoutFilterInput
		First  *int32
		After  *string
	}{})
	if err != nil || len(p.edges) != 0 {
		t.Errorf("payouts: %+v, %v", p, err)
	}
	acc, err := r.Accounts(ctx, struct {
		Filter *accountFilterInput
		First  *int32
		After  *string
	}{})
	if err != nil || len(acc.edges) != 0 {
		t.Errorf("accounts: %+v, %v", acc, err)
	}
	b, err := r.Balance(ctx, struct {
		Account string
		At      *Time
	}{Account: "fees:eth:upokt"})
	if err != nil || b != nil {
		t.Errorf("balance: %+v, %v", b, err)
	}
	txs, err := r.Transactions(ctx, struct {
		Filter *transactionFilterInput
		First  *int32
		After  *string
	}{})
	if err != nil || len(txs.edges) != 0 {
		t.Errorf("transactions: %+v, %v", txs, err)
	}
}

// TestSettlementBadInput: hostile arguments get an error with a code,
// never a panic or a server failure.
func TestSettlementBadInput(t *testing.T) {
	a := newSettledAPI(t)
	var page struct {
		Sessions struct{ PageInfo struct{ EndCursor string } }
		Payouts  struct{ PageInfo struct{ EndCursor string } }
	}
	as(t, a.srv, adminKey, `{ sessions(first: 1) { pageInfo { endCursor } } payouts(first: 1) { pageInfo { endCursor } } }`, nil, &page)
	for _, tc := range []struct {
		query string
		vars  map[string]any
		code  string
	}{
		{`{ sessions(first: 1001) { edges { cursor } } }`, nil, CodeBadUserInput},
		{`{ sessions(first: -1) { edges { cursor } } }`, nil, CodeBadUserInput},
		{`{ sessions(first: 99999999999) { edges { cursor } } }`, nil, CodeValidationFailed},
		{`{ payouts(first: 5000) { edges { cursor } } }`, nil, CodeBadUserInput},
		{`{ accounts(first: -5) { edges { cursor } } }`, nil, CodeBadUserInput},
		{`{ transactions(first: 1001) { edges { cursor } } }`, nil, CodeBadUserInput},
		{`{ sessions(after: "nope") { edges { cursor } } }`, nil, CodeBadUserInput},
		{`query($c: String) { sessions(after: $c) { edges { cursor } } }`, map[string]any{"c": page.Payouts.PageInfo.EndCursor}, CodeBadUserInput},
		{`query($c: String) { payouts(after: $c) { edges { cursor } } }`, map[string]any{"c": page.Sessions.PageInfo.EndCursor}, CodeBadUserInput},
		{`{ transactions(after: "dHJhbnNhY3Rpb246eA") { edges { cursor } } }`, nil, CodeBadUserInput},
		{`{ accounts(after: "%%%") { edges { cursor } } }`, nil, CodeBadUserInput},
		{`{ sessions(filter: {state: DONE}) { edges { cursor } } }`, nil, CodeValidationFailed},
		{`query($f: SessionFilter) { sessions(filter: $f) { edges { cursor } } }`, map[string]any{"f": map[string]any{"state": "DONE"}}, CodeValidationFailed},
		{`{ sessions(filter: {from: "yesterday"}) { edges { cursor } } }`, nil, CodeBadUserInput},
		{`{ sessions(filter: {from: "2026-03-02T00:00:00Z", to: "2026-03-01T00:00:00Z"}) { edges { cursor } } }`, nil, CodeBadUserInput},
		{`{ payouts(filter: {from: "2026-03-02T00:00:00Z", to: "2026-03-01T00:00:00Z"}) { edges { cursor } } }`, nil, CodeBadUserInput},
		{`{ payouts(filter: {kind: REFUND}) { edges { cursor } } }`, nil, CodeValidationFailed},
		{`{ accounts(filter: {kind: BANK}) { edges { cursor } } }`, nil, CodeValidationFailed},
		{`{ balance(account: "fees:eth:upokt", at: "soon") { value } }`, nil, CodeBadUserInput},
		{`{ session(id: "not-an-id") { id } }`, nil, CodeBadUserInput},
		{`{ session(id: "` + strings.Repeat("f", 65) + `") { id } }`, nil, CodeBadUserInput},
	} {
		res := post(t, a.srv, a.supA, tc.query, tc.vars)
		wantError(t, tc.query, res, http.StatusOK, tc.code)
	}
	// A huge id or account is no failure either: nothing is found.
	var none struct {
		Session *struct{ ID string }
		Balance *struct{ Value string }
	}
	as(t, a.srv, adminKey, `query($a: String!) { session(id: "`+strings.Repeat("0", 64)+`") { id } balance(account: $a) { value } }`,
		map[string]any{"a": strings.Repeat("application:x", 1000)}, &none)
	if none.Session != nil || none.Balance != nil {
		t.Errorf("unknown ids: %+v", none)
	}
	// A page boundary is a JSON number too big for an Int.
	res := post(t, a.srv, adminKey, `query($n: Int) { sessions(first: $n) { edges { cursor } } }`, map[string]any{"n": json.Number("1e30")})
	wantError(t, "first 1e30", res, http.StatusOK, CodeBadUserInput)
}
