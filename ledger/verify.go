package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5"
)

// LedgerProblem is one thing wrong with the ledger.
type LedgerProblem struct {
	Seq    int64
	Detail string
}

// LedgerReport is what VerifyLedger found.
type LedgerReport struct {
	Transactions int64
	Entries      int64
	Problems     []LedgerProblem
}

// VerifyLedger reads every transaction in seq order and checks that seqs
// run 1, 2, 3… without gaps, that each transaction's entries sum to zero
// per currency, that each prev_hash is the hash before it (32 zero bytes
// for the first) and that each hash recomputes (TransactionHash). An error
// means it could not read the ledger; problems are in the report.
func (s *Store) VerifyLedger(ctx context.Context) (LedgerReport, error) {
	var r LedgerReport
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return r, fmt.Errorf("ledger: verify: %w", err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT t.seq, t.id, t.kind, t.session, t.reverses, t.posted_at, t.prev_hash, t.hash,
			e.account, trim_scale(e.amount)::text, a.currency
		FROM ledger_transactions t
		LEFT JOIN ledger_entries e ON e.transaction_seq = t.seq
		LEFT JOIN accounts a ON a.id = e.account
		ORDER BY t.seq, e.account`)
	if err != nil {
		return r, fmt.Errorf("ledger: verify: %w", err)
	}
	var cur *Transaction
	var sums map[string]*apd.Decimal
	prev := make([]byte, 32)
	problem := func(seq int64, f string, args ...any) {
		r.Problems = append(r.Problems, LedgerProblem{Seq: seq, Detail: fmt.Sprintf(f, args...)})
	}
	finish := func() {
		if cur == nil {
			return
		}
		r.Transactions++
		if cur.Seq != r.Transactions {
			problem(cur.Seq, "seq %d where %d was next: transactions missing", cur.Seq, r.Transactions)
			r.Transactions = cur.Seq
		}
		if !bytes.Equal(cur.PrevHash, prev) {
			problem(cur.Seq, "prev_hash %x is not the hash before it %x", cur.PrevHash, prev)
		}
		h, err := TransactionHash(cur.PrevHash, cur)
		if err != nil {
			problem(cur.Seq, "%v", err)
		} else if !bytes.Equal(h, cur.Hash) {
			problem(cur.Seq, "hash %x does not recompute (%x): the transaction or its entries changed", cur.Hash, h)
		}
		for c, sum := range sums {
			if !sum.IsZero() {
				problem(cur.Seq, "entries sum to %s %s, not zero", sum.Text('f'), c)
			}
		}
		prev = cur.Hash
	}
	for rows.Next() {
		var t Transaction
		var account, amount, currency sql.Null[string]
		if err := rows.Scan(&t.Seq, &t.ID, &t.Kind, &t.Session, &t.Reverses, &t.PostedAt, &t.PrevHash, &t.Hash,
			&account, &amount, &currency); err != nil {
			return r, fmt.Errorf("ledger: verify: %w", err)
		}
		if cur == nil || cur.Seq != t.Seq {
			finish()
			cur, sums = &t, map[string]*apd.Decimal{}
		}
		if !account.Valid {
			continue
		}
		r.Entries++
		cur.Entries = append(cur.Entries, Entry{Account: account.V, Amount: amount.V})
		d, _, err := apd.NewFromString(amount.V)
		if err != nil {
			problem(t.Seq, "entry %s: amount %q", account.V, amount.V)
			continue
		}
		if !currency.Valid {
			problem(t.Seq, "entry of unknown account %s", account.V)
		}
		sum := sums[currency.V]
		if sum == nil {
			sum = new(apd.Decimal)
			sums[currency.V] = sum
		}
		if _, err := decimalContext.Add(sum, sum, d); err != nil {
			problem(t.Seq, "entry %s: %v", account.V, err)
		}
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("ledger: verify: %w", err)
	}
	finish()
	return r, nil
}
