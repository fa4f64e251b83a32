package audit

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/chain"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
)

// settled is traffic metered and settled by a meter on a clock chain of
// one-minute blocks from base, windows of two blocks (the traffic is all
// in the first, [12:00, 12:02)), its head ten minutes on; eth costs 0.5
// upokt a unit by default and 2 for app-b, with a 2.5% fee.
func settled(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, 2)
	head := base.Add(10 * time.Minute)
	c := &chain.Clock{Genesis: base, BlockTime: time.Minute, Now: func() time.Time { return head }}
	sc := ledger.SettlementConfig{Source: "clock", Genesis: some(base), BlockTime: time.Minute, SessionBlocks: 2, GraceBlocks: 1}
	prices := func() {
		e.exec(t, `INSERT INTO tariffs (service, application, price_per_unit, currency, effective_from) VALUES
			('eth', '', 0.5, 'upokt', '-infinity'), ('eth', 'app-b', 2, 'upokt', '-infinity')`,
			`INSERT INTO service_fees (service, fee_bps, effective_from) VALUES ('eth', 250, '-infinity')`)
	}
	through := func() bool { return e.count(t, `SELECT settled_through_height FROM settlement_state`) >= 10 }
	traffic(t, e, prices, through, func(cfg *meter.Config) {
		cfg.Chain, cfg.Settlement, cfg.SettleInterval = c, sc, 20*time.Millisecond
	})
	// The stray stream's service has no tariff: a session, no transaction.
	if n := e.count(t, `SELECT count(*) FROM ledger_transactions`); n != 2 {
		t.Fatalf("%d transactions settled, want 2 (app-a, app-b)", n)
	}
	return e
}

func some[T any](v T) sql.Null[T] { return sql.Null[T]{V: v, Valid: true} }

func TestAuditSettlement(t *testing.T) {
	e := settled(t)
	sum := e.audit(t, Filter{})
	if n := sum.Differences(); n != 0 {
		t.Fatalf("%d differences on an untouched settled ledger: %+v", n, sum.Samples)
	}
	if sum.Windows != 5 {
		t.Errorf("replay settled %d windows, want 5 ([1,2] to [9,10])", sum.Windows)
	}
	want := map[string]int64{"sessions": 3, "ledger_transactions": 2, "ledger_entries": 6, "accounts": 4, "ledger_chain": 2}
	compared(t, sum, want)
	// Filtered: app-b's session, transaction and entries; accounts all.
	sum = e.audit(t, Filter{Application: "app-b", From: base, To: base.Add(2 * time.Minute)})
	compared(t, sum, map[string]int64{"sessions": 1, "ledger_transactions": 1, "ledger_entries": 3, "accounts": 4})
	if n := sum.Differences(); n != 0 {
		t.Fatalf("%d differences, filtered: %+v", n, sum.Samples)
	}
	// A window without traffic selects no session.
	sum = e.audit(t, Filter{From: base.Add(4 * time.Minute)})
	compared(t, sum, map[string]int64{"sessions": 0, "ledger_transactions": 0, "ledger_entries": 0, "messages": 0})
}

// compared checks the rows a run compared, for the tables in want.
func compared(t *testing.T, sum *Summary, want map[string]int64) {
	t.Helper()
	for _, ts := range sum.Tables {
		if w, ok := want[ts.Table]; ok && ts.Compared != w {
			t.Errorf("%s: compared %d rows, want %d", ts.Table, ts.Compared, w)
		}
	}
}

func TestAuditFindsSettlementTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper []string
		want   []string
	}{
		// Entries refuse UPDATE; a tamperer disables the triggers. The
		// entry differs from the recomputed one, and the ledger no
		// longer verifies: the transaction does not sum to zero and its
		// hash does not recompute.
		{"ledger entry altered", []string{`ALTER TABLE ledger_entries DISABLE TRIGGER ALL`,
			`UPDATE ledger_entries SET amount = amount + 1 WHERE account = 'supplier:sup-1:upokt' AND transaction_seq = 1`,
			`ALTER TABLE ledger_entries ENABLE TRIGGER ALL`},
			[]string{"differs ledger_entries", "differs ledger_chain", "differs ledger_chain"}},
		// Tariffs are append-only; changed after the fact, the payout the
		// replay recomputes differs from the one posted: the session's
		// amount, the transaction's hash and its three entries.
		{"tariff changed", []string{`ALTER TABLE tariffs DISABLE TRIGGER ALL`,
			`UPDATE tariffs SET price_per_unit = 3 WHERE application = 'app-b'`,
			`ALTER TABLE tariffs ENABLE TRIGGER ALL`},
			[]string{"differs sessions", "differs ledger_transactions", "differs ledger_entries", "differs ledger_entries",
				"differs ledger_entries"}},
		{"session units changed", []string{`ALTER TABLE sessions DISABLE TRIGGER ALL`,
			`UPDATE sessions SET units = units - 1 WHERE application = 'app-a'`, `ALTER TABLE sessions ENABLE TRIGGER ALL`},
			[]string{"differs sessions"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := settled(t)
			e.exec(t, tc.tamper...)
			sum := e.audit(t, Filter{})
			got := e.found(t, sum.RunID)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("findings %q, want %q", got, tc.want)
			}
			if sum.Differences() != int64(len(tc.want)) {
				t.Errorf("summary counts %d differences, want %d", sum.Differences(), len(tc.want))
			}
		})
	}
}
