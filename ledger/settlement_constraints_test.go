package ledger

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/migrations"
)

// TestLedgerConstraints tries, with raw SQL, what the schema must refuse:
// a transaction whose entries do not sum to zero per currency (checked at
// commit), and any update, delete or truncate of the ledger, the sessions
// and the accounts; chain_sessions rows take their end once and nothing
// else.
func TestLedgerConstraints(t *testing.T) {
	pool, _ := pgtest.DB(t)
	ctx := context.Background()
	setup := []string{
		`INSERT INTO chain_sessions (start_height, end_height, starts_at, ends_at, start_hash)
			VALUES (1, 4, '2026-01-01', NULL, '\x01')`,
		`INSERT INTO sessions (id, session_id, application, service, supplier, start_height, end_height, relays, units, amount, currency)
			VALUES ('s1', 'sid', 'app', 'svc', 'sup', 1, 4, 2, 2, 2, 'upokt')`,
		`INSERT INTO accounts (id, kind, owner, currency) VALUES ('application:app:upokt', 'application', 'app', 'upokt'),
			('supplier:sup:upokt', 'supplier', 'sup', 'upokt'), ('supplier:sup:USD', 'supplier', 'sup', 'USD'),
			('application:app:USD', 'application', 'app', 'USD')`,
	}
	for _, q := range setup {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	const txRow = `INSERT INTO ledger_transactions (seq, id, kind, session, posted_at, prev_hash, hash)
		VALUES ($1, $2, 'settlement', 's1', now(), '\x0000000000000000000000000000000000000000000000000000000000000000',
			'\x1111111111111111111111111111111111111111111111111111111111111111')`
	post := func(seq int64, entries string) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, txRow, seq, "t"+string(rune('0'+seq))); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO ledger_entries (transaction_seq, account, amount) VALUES `+entries, seq)
			return err
		})
	}
	if err := post(1, `($1, 'application:app:upokt', -2), ($1, 'supplier:sup:upokt', 2)`); err != nil {
		t.Fatalf("a balanced transaction was refused: %v", err)
	}
	for name, entries := range map[string]string{
		"unbalanced":                      `($1, 'application:app:upokt', -2), ($1, 'supplier:sup:upokt', 1.999999999999999999)`,
		"one-sided":                       `($1, 'supplier:sup:upokt', 2)`,
		"balanced across currencies only": `($1, 'application:app:upokt', -2), ($1, 'supplier:sup:USD', 2)`,
	} {
		err := post(2, entries)
		if err == nil || !strings.Contains(err.Error(), "does not sum to zero") {
			t.Errorf("%s transaction: %v, want refused at commit", name, err)
		}
	}
	if err := post(2, `($1, 'application:app:upokt', -1), ($1, 'supplier:sup:upokt', 1), ($1, 'application:app:USD', -3), ($1, 'supplier:sup:USD', 3)`); err != nil {
		t.Fatalf("a transaction balanced in each of two currencies was refused: %v", err)
	}
	for _, q := range []string{
		`UPDATE ledger_entries SET amount = 5 WHERE transaction_seq = 1 AND account = 'supplier:sup:upokt'`,
		`DELETE FROM ledger_entries WHERE transaction_seq = 2`,
		`TRUNCATE ledger_entries CASCADE`,
		`UPDATE ledger_transactions SET posted_at = now() WHERE seq = 1`,
		`DELETE FROM ledger_transactions WHERE seq = 2`,
		`TRUNCATE ledger_transactions CASCADE`,
		`UPDATE sessions SET amount = 1`,
		`DELETE FROM sessions`,
		`UPDATE accounts SET currency = 'X'`,
		`DELETE FROM accounts WHERE id = 'supplier:sup:USD'`,
		`UPDATE chain_sessions SET starts_at = '2026-01-02'`,
		`DELETE FROM chain_sessions`,
	} {
		if _, err := pool.Exec(ctx, q); err == nil {
			t.Errorf("refused nothing: %s", q)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE chain_sessions SET ends_at = '2026-01-01 00:01' WHERE start_height = 1`); err != nil {
		t.Fatalf("setting a window's end once: %v", err)
	}
	if _, err := pool.Exec(ctx, `UPDATE chain_sessions SET ends_at = '2026-01-01 00:02' WHERE start_height = 1`); err == nil {
		t.Fatal("a window's end was changed")
	}
	var n int
	var sum string
	if err := pool.QueryRow(ctx, `SELECT count(*), sum(amount)::text FROM ledger_entries`).Scan(&n, &sum); err != nil || n != 6 {
		t.Fatalf("entries: %d, %v; want the 6 posted", n, err)
	}
}

// TestSettlementMigrationDown: 00008 goes down and up again.
func TestSettlementMigrationDown(t *testing.T) {
	pool, _ := pgtest.DB(t)
	ctx := context.Background()
	downTo(t, pool, 5)
	if err := migrations.Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
	var until string
	if err := pool.QueryRow(ctx, `SELECT settled_until::text FROM settlement_state`).Scan(&until); err != nil || until != "-infinity" {
		t.Fatalf("settlement_state after up: %q, %v", until, err)
	}
}
