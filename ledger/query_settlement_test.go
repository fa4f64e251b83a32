package ledger_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/chain"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/internal/settletest"
	"github.com/relaymeter/relaymeter/ledger"
)

var (
	app1 = ledger.Scope{Application: "app1"}
	app2 = ledger.Scope{Application: "app2"}
	supA = ledger.Scope{Supplier: "supA"}
	supB = ledger.Scope{Supplier: "supB"}
)

func settled(t *testing.T) *settletest.Ledger {
	t.Helper()
	pool, _ := pgtest.DB(t)
	return settletest.New(t, pool)
}

// sessionLine is what a test asserts of a session.
func sessionLine(r ledger.SessionRow) string {
	return fmt.Sprintf("%d-%d %s %s/%s/%s %d %d %s %s", r.StartHeight, r.EndHeight, r.State, r.Application, r.Service,
		r.Supplier, r.Relays, r.Units, r.Amount, r.Currency)
}

// idOf is the id a session of the fixture must have: the settler's.
func idOf(l *settletest.Ledger, start int64, app, supplier string) string {
	return ledger.SessionKey(chain.SessionID(l.Clock.Hash(start), "eth", app, start), supplier)
}

func listSessions(t *testing.T, s *ledger.Store, f ledger.SessionFilter, first int) []ledger.SessionRow {
	t.Helper()
	var out []ledger.SessionRow
	after := ""
	for range 100 {
		p, err := s.ListSessions(context.Background(), f, first, after)
		if err != nil {
			t.Fatalf("sessions %+v after %q: %v", f, after, err)
		}
		if len(p.Items) > first || p.HasNextPage && len(p.Items) != first {
			t.Fatalf("sessions %+v: page of %d, first %d, next %v", f, len(p.Items), first, p.HasNextPage)
		}
		out = append(out, p.Items...)
		if !p.HasNextPage {
			return out
		}
		after = p.EndCursor()
	}
	t.Fatal("sessions: paging does not end")
	return nil
}

// TestListSessions: the settled sessions are the settler's rows, the
// closed and open ones are summed from their messages as the settler will,
// newest first, the same over every page size, within each scope.
func TestListSessions(t *testing.T) {
	l := settled(t)
	s := l.Store
	// W5's three sessions are in the order of their ids.
	w5 := []string{
		"5-6 SETTLED app2/eth/supA 1 1 3 upokt",
		"5-6 SETTLED app1/eth/supA 0 0 0 ",
		"5-6 SETTLED app1/eth/supB 1 1 2 upokt",
	}
	if !(idOf(l, 5, "app2", "supA") < idOf(l, 5, "app1", "supA") && idOf(l, 5, "app1", "supA") < idOf(l, 5, "app1", "supB")) {
		t.Fatal("the fixture's W5 ids are not in the order this test assumes")
	}
	all := append([]string{
		// C's G+85; D's G+70 never crossed.
		"9-10 OPEN app1/eth/supB 1 1 2 upokt",
		"7-8 CLOSED app1/eth/supB 2 2 4 upokt",
	}, w5...)
	all = append(all,
		// A's G+25 only: its late response is the adjustment of W5.
		"3-4 SETTLED app2/eth/supA 2 2 6 upokt",
		"3-4 SETTLED app1/eth/supA 1 10 20 upokt",
		// A's request at G+19 and its response at G+21 included.
		"1-2 SETTLED app1/eth/supA 4 40 80 upokt",
	)
	if idOf(l, 3, "app2", "supA") > idOf(l, 3, "app1", "supA") {
		all[5], all[6] = all[6], all[5]
	}
	lines := func(rows []ledger.SessionRow) []string {
		var out []string
		for _, r := range rows {
			out = append(out, sessionLine(r))
		}
		return out
	}
	for _, first := range []int{1, 3, 8, 1000} {
		if got := lines(listSessions(t, s, ledger.SessionFilter{Scope: ledger.All}, first)); !reflect.DeepEqual(got, all) {
			t.Errorf("first %d:\n%s\nwant\n%s", first, strings.Join(got, "\n"), strings.Join(all, "\n"))
		}
	}
	rows := listSessions(t, s, ledger.SessionFilter{Scope: ledger.All}, 100)
	for _, r := range rows {
		if want := idOf(l, r.StartHeight, r.Application, r.Supplier); r.ID != want {
			t.Errorf("%s: id %s, want %s", sessionLine(r), r.ID, want)
		}
		if r.SessionID != chain.SessionID(l.Clock.Hash(r.StartHeight), r.Service, r.Application, r.StartHeight) {
			t.Errorf("%s: session id %s", sessionLine(r), r.SessionID)
		}
		if want := settletest.At(float64(10 * (r.StartHeight - 1))); !r.StartsAt.Equal(want) {
			t.Errorf("%s: starts at %v, want %v", sessionLine(r), r.StartsAt, want)
		}
		switch {
		case r.State == ledger.SessionOpen && r.EndsAt.Valid,
			r.State != ledger.SessionOpen && !r.EndsAt.Valid,
			r.State == ledger.SessionSettled && r.SettledAt.IsZero(),
			r.State != ledger.SessionSettled && !r.SettledAt.IsZero():
			t.Errorf("%s: ends %v, settled %v", sessionLine(r), r.EndsAt, r.SettledAt)
		}
	}

	pick := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, all[i])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    ledger.SessionFilter
		want []string
	}{
		{"open", ledger.SessionFilter{Scope: ledger.All, State: ledger.SessionOpen}, pick(0)},
		{"closed", ledger.SessionFilter{Scope: ledger.All, State: ledger.SessionClosed}, pick(1)},
		{"settled", ledger.SessionFilter{Scope: ledger.All, State: ledger.SessionSettled}, all[2:]},
		{"application", ledger.SessionFilter{Scope: ledger.All, Application: "app2"}, pick(2, indexOf(all, "3-4 SETTLED app2/eth/supA"))},
		{"supplier", ledger.SessionFilter{Scope: ledger.All, Supplier: "supB"}, pick(0, 1, 4)},
		{"service", ledger.SessionFilter{Scope: ledger.All, Service: "eth"}, all},
		{"no service", ledger.SessionFilter{Scope: ledger.All, Service: "pool"}, nil},
		// from and to bound the windows' starts: W3 (G+20) to W7 (G+60) excluded.
		{"from to", ledger.SessionFilter{Scope: ledger.All, From: settletest.At(20), To: settletest.At(60)}, all[2:7]},
		{"from", ledger.SessionFilter{Scope: ledger.All, From: settletest.At(60.5)}, pick(0)},
		{"scope app1", ledger.SessionFilter{Scope: app1}, pick(0, 1, 3, 4, indexOf(all, "3-4 SETTLED app1/eth/supA"), 7)},
		{"scope app2", ledger.SessionFilter{Scope: app2}, pick(2, indexOf(all, "3-4 SETTLED app2/eth/supA"))},
		{"scope supB", ledger.SessionFilter{Scope: supB}, pick(0, 1, 4)},
		{"scope supB, closed", ledger.SessionFilter{Scope: supB, State: ledger.SessionClosed}, pick(1)},
		// A filter never widens the scope.
		{"scope app2 filtering app1", ledger.SessionFilter{Scope: app2, Application: "app1"}, nil},
		{"scope supA filtering supB", ledger.SessionFilter{Scope: supA, Supplier: "supB"}, nil},
		{"no scope", ledger.SessionFilter{}, nil},
	} {
		for _, first := range []int{2, 50} {
			if got := lines(listSessions(t, s, tc.f, first)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s, first %d:\n%s\nwant\n%s", tc.name, first, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		}
	}
}

func indexOf(lines []string, prefix string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}

// TestSessionSettlesInPlace: a CLOSED session shows what the settler then
// settles, under the same id, and a cursor taken before the settlement
// keeps its place after it.
func TestSessionSettlesInPlace(t *testing.T) {
	l := settled(t)
	ctx := context.Background()
	p, err := l.Store.ListSessions(ctx, ledger.SessionFilter{Scope: ledger.All}, 1, "")
	if err != nil || len(p.Items) != 1 || p.Items[0].State != ledger.SessionOpen {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	after := p.EndCursor()
	closed, found, err := l.Store.SessionByID(ctx, supB, idOf(l, 7, "app1", "supB"))
	if err != nil || !found || closed.State != ledger.SessionClosed {
		t.Fatalf("W7 before: %+v, %v, %v", closed, found, err)
	}
	l.Settle(9)
	next, err := l.Store.ListSessions(ctx, ledger.SessionFilter{Scope: ledger.All}, 2, after)
	if err != nil || len(next.Items) != 2 {
		t.Fatalf("next page: %+v, %v", next, err)
	}
	got := next.Items[0]
	if got.ID != closed.ID || got.State != ledger.SessionSettled || got.Relays != closed.Relays ||
		got.Units != closed.Units || got.Amount != closed.Amount || got.Currency != closed.Currency || got.SettledAt.IsZero() {
		t.Errorf("W7 settled as %s, was %s", sessionLine(got), sessionLine(closed))
	}
	if next.Items[1].StartHeight != 5 {
		t.Errorf("after W7: %s", sessionLine(next.Items[1]))
	}
	again, found, err := l.Store.SessionByID(ctx, supB, closed.ID)
	if err != nil || !found || again.State != ledger.SessionSettled || again.Amount != "4" {
		t.Errorf("W7 by id after: %+v, %v, %v", again, found, err)
	}
}

// TestSessionByID: a settled session and one not settled by id, each in
// the scopes that may see it only.
func TestSessionByID(t *testing.T) {
	l := settled(t)
	ctx := context.Background()
	for _, tc := range []struct {
		id    string
		scope ledger.Scope
		want  string // "" for not found
	}{
		{idOf(l, 1, "app1", "supA"), ledger.All, "1-2 SETTLED app1/eth/supA 4 40 80 upokt"},
		{idOf(l, 1, "app1", "supA"), app1, "1-2 SETTLED app1/eth/supA 4 40 80 upokt"},
		{idOf(l, 1, "app1", "supA"), supA, "1-2 SETTLED app1/eth/supA 4 40 80 upokt"},
		{idOf(l, 1, "app1", "supA"), app2, ""},
		{idOf(l, 1, "app1", "supA"), supB, ""},
		{idOf(l, 1, "app1", "supA"), ledger.None, ""},
		{idOf(l, 9, "app1", "supB"), app1, "9-10 OPEN app1/eth/supB 1 1 2 upokt"},
		{idOf(l, 9, "app1", "supB"), supA, ""},
		{idOf(l, 9, "app1", "supB"), ledger.None, ""},
		// A session that does not exist: a window without relays of app2.
		{idOf(l, 9, "app2", "supA"), ledger.All, ""},
	} {
		r, found, err := l.Store.SessionByID(ctx, tc.scope, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if found {
			got = sessionLine(r)
		}
		if got != tc.want {
			t.Errorf("%s as %+v: %q, want %q", tc.id[:8], tc.scope, got, tc.want)
		}
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", 64), strings.Repeat("0", 63), strings.Repeat("0", 65)} {
		if _, _, err := l.Store.SessionByID(ctx, ledger.All, bad); !ledger.IsInvalidInput(err) {
			t.Errorf("id %q: %v, want invalid input", bad, err)
		}
	}
}

// TestSettlementReadsRefuse: page sizes, cursors, filters the reads cannot
// use are invalid input, never a failure.
func TestSettlementReadsRefuse(t *testing.T) {
	l := settled(t)
	s, ctx := l.Store, context.Background()
	sp, _ := s.ListSessions(ctx, ledger.SessionFilter{Scope: ledger.All}, 1, "")
	pp, _ := s.ListPayouts(ctx, ledger.PayoutFilter{Scope: ledger.All}, 1, "")
	tp, _ := s.ListTransactions(ctx, ledger.TransactionFilter{Scope: ledger.All}, 1, "")
	ap, _ := s.ListAccounts(ctx, ledger.AccountFilter{Scope: ledger.All}, 1, "")
	if !sp.HasNextPage || !pp.HasNextPage || !tp.HasNextPage || !ap.HasNextPage {
		t.Fatal("a list of the fixture has one row only")
	}
	cursors := map[string]string{"sessions": sp.EndCursor(), "payouts": pp.EndCursor(), "transactions": tp.EndCursor(), "accounts": ap.EndCursor()}
	lists := map[string]func(first int, after string) error{
		"sessions": func(first int, after string) error {
			_, err := s.ListSessions(ctx, ledger.SessionFilter{Scope: ledger.All}, first, after)
			return err
		},
		"payouts": func(first int, after string) error {
			_, err := s.ListPayouts(ctx, ledger.PayoutFilter{Scope: ledger.All}, first, after)
			return err
		},
		"transactions": func(first int, after string) error {
			_, err := s.ListTransactions(ctx, ledger.TransactionFilter{Scope: ledger.All}, first, after)
			return err
		},
		"accounts": func(first int, after string) error {
			_, err := s.ListAccounts(ctx, ledger.AccountFilter{Scope: ledger.All}, first, after)
			return err
		},
	}
	enc := func(s string) string { return b64(s) }
	for name, list := range lists {
		for _, first := range []int{-1, ledger.MaxPageSize + 1, 1 << 40} {
			if err := list(first, ""); !ledger.IsInvalidInput(err) {
				t.Errorf("%s first %d: %v", name, first, err)
			}
		}
		bad := []string{"!!", enc("session"), enc("stream:1_x"), enc(name + ":"), enc("session:-1_" + strings.Repeat("a", 64)),
			enc("session:1_zz"), enc("payout:x_upokt"), enc("payout:0_upokt"), enc("payout:1_"), enc("transaction:-3")}
		for other, c := range cursors {
			if other != name {
				bad = append(bad, c)
			}
		}
		for _, c := range bad {
			if err := list(10, c); !ledger.IsInvalidInput(err) {
				t.Errorf("%s after %q: %v, want invalid input", name, c, err)
			}
		}
		if err := list(10, cursors[name]); err != nil {
			t.Errorf("%s after its own cursor: %v", name, err)
		}
	}
	for what, err := range map[string]error{
		"state": func() error {
			_, err := s.ListSessions(ctx, ledger.SessionFilter{Scope: ledger.All, State: "DONE"}, 1, "")
			return err
		}(),
		"sessions to before from": func() error {
			_, err := s.ListSessions(ctx, ledger.SessionFilter{Scope: ledger.All, From: settletest.At(10), To: settletest.At(0)}, 1, "")
			return err
		}(),
		"payout kind": func() error {
			_, err := s.ListPayouts(ctx, ledger.PayoutFilter{Scope: ledger.All, Kind: "SETTLEMENT"}, 1, "")
			return err
		}(),
		"payouts to before from": func() error {
			_, err := s.ListPayouts(ctx, ledger.PayoutFilter{Scope: ledger.All, From: settletest.At(10), To: settletest.At(0)}, 1, "")
			return err
		}(),
		"transaction kind": func() error {
			_, err := s.ListTransactions(ctx, ledger.TransactionFilter{Scope: ledger.All, Kind: "refund"}, 1, "")
			return err
		}(),
		"account kind": func() error {
			_, err := s.ListAccounts(ctx, ledger.AccountFilter{Scope: ledger.All, Kind: "bank"}, 1, "")
			return err
		}(),
	} {
		if !ledger.IsInvalidInput(err) {
			t.Errorf("%s: %v, want invalid input", what, err)
		}
	}
}

func payoutLine(p ledger.PayoutRow) string {
	return fmt.Sprintf("%d %s %s/%s/%s %s %s %s %s", p.Seq, p.Kind, p.Application, p.Service, p.Supplier, p.Gross, p.Fee,
		p.SupplierAmount, p.Currency)
}

// TestListPayouts: each transaction as what the application paid, the fee
// and what the supplier got, newest first, within each scope.
func TestListPayouts(t *testing.T) {
	l := settled(t)
	s, ctx := l.Store, context.Background()
	all := []string{
		"6 settlement app2/eth/supA 3 0.3 2.7 upokt",
		"5 settlement app1/eth/supB 2 0.2 1.8 upokt",
		"4 adjustment app1/eth/supA 20 2 18 upokt",
		"3 settlement app2/eth/supA 6 0.6 5.4 upokt",
		"2 settlement app1/eth/supA 20 2 18 upokt",
		"1 settlement app1/eth/supA 80 8 72 upokt",
	}
	list := func(f ledger.PayoutFilter, first int) []string {
		var out []string
		after := ""
		for range 20 {
			p, err := s.ListPayouts(ctx, f, first, after)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Items {
				out = append(out, payoutLine(r))
			}
			if !p.HasNextPage {
				break
			}
			after = p.EndCursor()
		}
		return out
	}
	w5adj := idOf(l, 5, "app1", "supA")
	for _, tc := range []struct {
		name string
		f    ledger.PayoutFilter
		want []string
	}{
		{"all", ledger.PayoutFilter{Scope: ledger.All}, all},
		{"adjustments", ledger.PayoutFilter{Scope: ledger.All, Kind: ledger.KindAdjustment}, all[2:3]},
		{"session", ledger.PayoutFilter{Scope: ledger.All, Session: w5adj}, all[2:3]},
		{"application", ledger.PayoutFilter{Scope: ledger.All, Application: "app2"}, []string{all[0], all[3]}},
		{"supplier", ledger.PayoutFilter{Scope: ledger.All, Supplier: "supB"}, all[1:2]},
		{"service", ledger.PayoutFilter{Scope: ledger.All, Service: "eth"}, all},
		{"no service", ledger.PayoutFilter{Scope: ledger.All, Service: "pool"}, nil},
		// W1 and W3 were posted at G+1005s, W5 at G+1007s.
		{"from", ledger.PayoutFilter{Scope: ledger.All, From: settletest.At(1006)}, all[:3]},
		{"to", ledger.PayoutFilter{Scope: ledger.All, To: settletest.At(1006)}, all[3:]},
		{"scope app1", ledger.PayoutFilter{Scope: app1}, []string{all[1], all[2], all[4], all[5]}},
		{"scope supA", ledger.PayoutFilter{Scope: supA}, []string{all[0], all[2], all[3], all[4], all[5]}},
		{"scope supB", ledger.PayoutFilter{Scope: supB}, all[1:2]},
		{"scope app2 filtering app1", ledger.PayoutFilter{Scope: app2, Application: "app1"}, nil},
		{"scope of both", ledger.PayoutFilter{Scope: ledger.Scope{Application: "app1", Supplier: "supA"}}, nil},
		{"no scope", ledger.PayoutFilter{}, nil},
	} {
		for _, first := range []int{1, 4, 100} {
			if got := list(tc.f, first); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s, first %d:\n%s\nwant\n%s", tc.name, first, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		}
	}
	p, err := s.ListPayouts(ctx, ledger.PayoutFilter{Scope: ledger.All, Kind: ledger.KindAdjustment}, 1, "")
	if err != nil || len(p.Items) != 1 || p.Items[0].Session.V != w5adj || !p.Items[0].PostedAt.Equal(settletest.At(1007)) {
		t.Errorf("the adjustment: %+v, %v", p.Items, err)
	}
}

// TestAccountsAndBalances: every account's balance is the sum of its
// entries, now and as of a time, and equals what the payouts say it got or
// paid; a scope sees its own accounts only.
func TestAccountsAndBalances(t *testing.T) {
	l := settled(t)
	s, ctx := l.Store, context.Background()
	accounts := func(f ledger.AccountFilter, first int) []string {
		var out []string
		after := ""
		for range 20 {
			p, err := s.ListAccounts(ctx, f, first, after)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range p.Items {
				out = append(out, a.ID+" "+a.Kind+" "+a.Owner+" "+a.Currency+" "+a.Balance)
			}
			if !p.HasNextPage {
				break
			}
			after = p.EndCursor()
		}
		return out
	}
	all := []string{
		"application:app1:upokt application app1 upokt -122",
		"application:app2:upokt application app2 upokt -9",
		"fees:eth:upokt fees eth upokt 13.1",
		"supplier:supA:upokt supplier supA upokt 116.1",
		"supplier:supB:upokt supplier supB upokt 1.8",
	}
	for _, tc := range []struct {
		name string
		f    ledger.AccountFilter
		want []string
	}{
		{"all", ledger.AccountFilter{Scope: ledger.All}, all},
		{"kind", ledger.AccountFilter{Scope: ledger.All, Kind: ledger.AccountSupplier}, all[3:]},
		{"owner", ledger.AccountFilter{Scope: ledger.All, Owner: "eth"}, all[2:3]},
		{"currency", ledger.AccountFilter{Scope: ledger.All, Currency: "USD"}, nil},
		{"scope app1", ledger.AccountFilter{Scope: app1}, all[:1]},
		{"scope supB", ledger.AccountFilter{Scope: supB}, all[4:]},
		{"scope app1 filtering app2", ledger.AccountFilter{Scope: app1, Owner: "app2"}, nil},
		{"scope of both", ledger.AccountFilter{Scope: ledger.Scope{Application: "app1", Supplier: "supA"}}, nil},
		{"no scope", ledger.AccountFilter{}, nil},
	} {
		for _, first := range []int{1, 2, 10} {
			if got := accounts(tc.f, first); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s, first %d:\n%s\nwant\n%s", tc.name, first, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		}
	}

	for _, tc := range []struct {
		account string
		scope   ledger.Scope
		at      time.Time
		want    string // "" for not found
	}{
		{"application:app1:upokt", ledger.All, time.Time{}, "-122"},
		{"application:app1:upokt", app1, time.Time{}, "-122"},
		// Before W5 settled: W1 and W3 only; before anything: 0.
		{"application:app1:upokt", app1, settletest.At(1006), "-100"},
		{"supplier:supA:upokt", supA, settletest.At(1006), "95.4"},
		{"fees:eth:upokt", ledger.All, settletest.At(1006), "10.6"},
		{"supplier:supA:upokt", supA, settletest.At(1004), "0"},
		{"supplier:supA:upokt", supA, settletest.At(1e6), "116.1"},
		// Another's account, the fees' to a tenant, no account: not found.
		{"application:app1:upokt", app2, time.Time{}, ""},
		{"application:app1:upokt", supA, time.Time{}, ""},
		{"fees:eth:upokt", app1, time.Time{}, ""},
		{"application:app1:upokt", ledger.None, time.Time{}, ""},
		{"application:app9:upokt", ledger.All, time.Time{}, ""},
		{"", ledger.All, time.Time{}, ""},
	} {
		b, found, err := s.AccountBalance(ctx, tc.scope, tc.account, tc.at)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if found {
			got = b.Value
			if b.Account != tc.account || b.Currency != "upokt" || !tc.at.IsZero() && !b.At.Equal(tc.at) || b.At.IsZero() {
				t.Errorf("balance of %s: %+v", tc.account, b)
			}
		}
		if got != tc.want {
			t.Errorf("balance of %s as %+v at %v: %q, want %q", tc.account, tc.scope, tc.at, got, tc.want)
		}
	}

	// Balances are what the payouts say each account paid or got.
	p, err := s.ListPayouts(ctx, ledger.PayoutFilter{Scope: ledger.All}, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]float64{}
	for _, r := range p.Items {
		sums["application:"+r.Application+":"+r.Currency] -= num(t, r.Gross)
		sums["supplier:"+r.Supplier+":"+r.Currency] += num(t, r.SupplierAmount)
		sums["fees:"+r.Service+":"+r.Currency] += num(t, r.Fee)
	}
	ap, err := s.ListAccounts(ctx, ledger.AccountFilter{Scope: ledger.All}, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ap.Items {
		if d := sums[a.ID] - num(t, a.Balance); d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: balance %s, payouts %v", a.ID, a.Balance, sums[a.ID])
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func num(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return f
}

// TestListTransactions: the ledger in seq order with each transaction's
// entries, hashes that chain and recompute, and a scope sees the
// transactions with an entry in its accounts, whole.
func TestListTransactions(t *testing.T) {
	l := settled(t)
	s, ctx := l.Store, context.Background()
	list := func(f ledger.TransactionFilter, first int) []ledger.Transaction {
		var out []ledger.Transaction
		after := ""
		for range 20 {
			p, err := s.ListTransactions(ctx, f, first, after)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p.Items...)
			if !p.HasNextPage {
				break
			}
			after = p.EndCursor()
		}
		return out
	}
	all := list(ledger.TransactionFilter{Scope: ledger.All}, 2)
	if len(all) != 6 {
		t.Fatalf("%d transactions, want 6", len(all))
	}
	prev := make([]byte, 32)
	for i, tx := range all {
		h, err := ledger.TransactionHash(prev, &tx)
		if tx.Seq != int64(i+1) || !bytes.Equal(tx.PrevHash, prev) || err != nil || !bytes.Equal(h, tx.Hash) {
			t.Errorf("transaction %d: seq %d, prev %x, want %x; hash %x, recomputed %x (%v)", i, tx.Seq, tx.PrevHash, prev, tx.Hash, h, err)
		}
		prev = tx.Hash
	}
	adj := all[3]
	want := []ledger.Entry{{Account: "application:app1:upokt", Amount: "-20"}, {Account: "fees:eth:upokt", Amount: "2"},
		{Account: "supplier:supA:upokt", Amount: "18"}}
	if adj.Kind != ledger.KindAdjustment || !reflect.DeepEqual(adj.Entries, want) || adj.Session.V != idOf(l, 5, "app1", "supA") ||
		adj.Reverses.Valid || adj.ID != ledger.TransactionID(chain.SessionID(l.Clock.Hash(5), "eth", "app1", 5), "supA", ledger.KindAdjustment) {
		t.Errorf("seq 4: %+v", adj)
	}
	seqs := func(ts []ledger.Transaction) []int64 {
		var out []int64
		for _, tx := range ts {
			out = append(out, tx.Seq)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    ledger.TransactionFilter
		want []int64
	}{
		{"scope app1", ledger.TransactionFilter{Scope: app1}, []int64{1, 2, 4, 5}},
		{"scope app2", ledger.TransactionFilter{Scope: app2}, []int64{3, 6}},
		{"scope supB", ledger.TransactionFilter{Scope: supB}, []int64{5}},
		{"account", ledger.TransactionFilter{Scope: ledger.All, Account: "supplier:supB:upokt"}, []int64{5}},
		{"fees account", ledger.TransactionFilter{Scope: ledger.All, Account: "fees:eth:upokt"}, []int64{1, 2, 3, 4, 5, 6}},
		{"scope app1, account of app2", ledger.TransactionFilter{Scope: app1, Account: "application:app2:upokt"}, nil},
		{"kind", ledger.TransactionFilter{Scope: ledger.All, Kind: ledger.KindSettlement}, []int64{1, 2, 3, 5, 6}},
		{"session", ledger.TransactionFilter{Scope: ledger.All, Session: idOf(l, 3, "app2", "supA")}, []int64{3}},
		{"from to", ledger.TransactionFilter{Scope: ledger.All, From: settletest.At(1005), To: settletest.At(1006)}, []int64{1, 2, 3}},
		{"scope of both", ledger.TransactionFilter{Scope: ledger.Scope{Application: "app1", Supplier: "supA"}}, nil},
		{"no scope", ledger.TransactionFilter{}, nil},
	} {
		for _, first := range []int{1, 100} {
			if got := seqs(list(tc.f, first)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s, first %d: %v, want %v", tc.name, first, got, tc.want)
			}
		}
	}
	// A party sees its transaction whole: supB sees app1's debit and the
	// fee of the session it served, and can recompute its hash.
	if got := list(ledger.TransactionFilter{Scope: supB}, 10); len(got) != 1 || !reflect.DeepEqual(got[0], all[4]) {
		t.Errorf("supB's transaction: %+v, want %+v", got, all[4])
	}
	if tx, found, err := s.TransactionBySeq(ctx, app2, 1); err != nil || found {
		t.Errorf("app2 reads seq 1: %+v, %v, %v", tx, found, err)
	}
	if tx, found, err := s.TransactionBySeq(ctx, app1, 1); err != nil || !found || !reflect.DeepEqual(tx, all[0]) {
		t.Errorf("app1 reads seq 1: %+v, %v, %v", tx, found, err)
	}
}

// TestSessionsBehindSettlement: with many windows not settled, every page
// size lists the same sessions, and settling them changes their state and
// nothing else: what the reads sum is what the settler posts.
func TestSessionsBehindSettlement(t *testing.T) {
	pool, _ := pgtest.DB(t)
	l := settletest.Bulk(t, pool, 3, 12, false)
	s := l.Store
	key := func(r ledger.SessionRow) string {
		return fmt.Sprintf("%s %d %s/%s/%s %d %d %s %s", r.ID, r.StartHeight, r.Application, r.Service, r.Supplier,
			r.Relays, r.Units, r.Amount, r.Currency)
	}
	keys := func(rows []ledger.SessionRow) (out []string) {
		for _, r := range rows {
			out = append(out, key(r))
		}
		return out
	}
	before := listSessions(t, s, ledger.SessionFilter{Scope: ledger.All}, 100)
	if len(before) != 36 {
		t.Fatalf("%d sessions, want 3 in each of 12 windows", len(before))
	}
	states := map[ledger.SessionState]int{}
	for _, r := range before {
		states[r.State]++
		price := map[string]string{"app0": "40", "app1": "40", "app2": "60"}[r.Application]
		if r.Relays != 20 || r.Units != 20 || r.Amount != price || r.Currency != "upokt" {
			t.Errorf("%s", key(r))
		}
	}
	if states[ledger.SessionOpen] != 3 || states[ledger.SessionClosed] != 33 {
		t.Errorf("states %v", states)
	}
	for _, first := range []int{1, 4, 7} {
		if got := keys(listSessions(t, s, ledger.SessionFilter{Scope: ledger.All}, first)); !reflect.DeepEqual(got, keys(before)) {
			t.Errorf("first %d: %v", first, got)
		}
	}
	if got := keys(listSessions(t, s, ledger.SessionFilter{Scope: ledger.Scope{Application: "app2"}}, 5)); len(got) != 12 {
		t.Errorf("app2: %d sessions", len(got))
	}
	l.Settle(2*10 + 1) // all but the last two windows
	after := listSessions(t, s, ledger.SessionFilter{Scope: ledger.All}, 5)
	if !reflect.DeepEqual(keys(after), keys(before)) {
		t.Errorf("after settling:\n%s\nbefore:\n%s", strings.Join(keys(after), "\n"), strings.Join(keys(before), "\n"))
	}
	states = map[ledger.SessionState]int{}
	for _, r := range after {
		states[r.State]++
	}
	if states[ledger.SessionOpen] != 3 || states[ledger.SessionClosed] != 3 || states[ledger.SessionSettled] != 30 {
		t.Errorf("states after settling %v", states)
	}
}
