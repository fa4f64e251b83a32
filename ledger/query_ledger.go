package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func checkKind(field, kind string) error {
	switch kind {
	case "", KindSettlement, KindAdjustment, KindReversal:
		return nil
	}
	return &InvalidInputError{Field: field, Reason: "unknown kind " + strconv.Quote(kind)}
}

// accountsVisible returns a condition, for a query adding to w, that the
// account whose id is the column account is one scope lets through: an
// application's accounts to its scope, a supplier's to its, every account
// (the fees' too) to All, none to a scope of both or of neither.
func accountsVisible(w *sqlWhere, scope Scope, account string) string {
	switch {
	case scope.all:
		return "true"
	case scope.Empty(), scope.Application != "" && scope.Supplier != "":
		return "false"
	case scope.Application != "":
		return "EXISTS (SELECT 1 FROM accounts va WHERE va.id = " + account + " AND va.kind = 'application' AND va.owner = " + w.param(scope.Application) + ")"
	}
	return "EXISTS (SELECT 1 FROM accounts va WHERE va.id = " + account + " AND va.kind = 'supplier' AND va.owner = " + w.param(scope.Supplier) + ")"
}

// touches returns a condition that transaction t has an entry in an
// account of the given kind and owner; for scope, one scope lets
// through.
func touches(w *sqlWhere, t, kind, owner string) string {
	return "EXISTS (SELECT 1 FROM ledger_entries te JOIN accounts ta ON ta.id = te.account WHERE te.transaction_seq = " + t +
		".seq AND ta.kind = '" + kind + "' AND ta.owner = " + w.param(owner) + ")"
}

func scopeTouches(w *sqlWhere, scope Scope, t string) {
	switch {
	case scope.all:
	case scope.Empty(), scope.Application != "" && scope.Supplier != "":
		w.add("false")
	case scope.Application != "":
		w.add(touches(w, t, AccountApplication, scope.Application))
	default:
		w.add(touches(w, t, AccountSupplier, scope.Supplier))
	}
}

// Accounts.

// AccountFilter selects accounts; empty fields match everything.
type AccountFilter struct {
	// Scope is whose accounts may be returned, whatever the rest
	// selects.
	Scope                 Scope
	Kind, Owner, Currency string
}

// AccountRow is an account with its balance now.
type AccountRow struct {
	Account
	// Balance is the sum of its entries, an exact decimal.
	Balance string
}

const accountCursor = "account"

// Cursor returns the account's cursor in ListAccounts.
func (a AccountRow) Cursor() string { return encodeCursor(accountCursor, a.ID) }

// ListAccounts returns up to first accounts f selects, by id, starting
// after the account whose cursor is after ("" for the first page), each
// with its balance now.
func (s *Store) ListAccounts(ctx context.Context, f AccountFilter, first int, after string) (Page[AccountRow], error) {
	if err := checkPageSize(first); err != nil {
		return Page[AccountRow]{}, err
	}
	switch f.Kind {
	case "", AccountApplication, AccountSupplier, AccountFees:
	default:
		return Page[AccountRow]{}, &InvalidInputError{Field: "filter.kind", Reason: "unknown kind " + strconv.Quote(f.Kind)}
	}
	key, err := decodeCursor(accountCursor, after)
	if err != nil {
		return Page[AccountRow]{}, err
	}
	var w sqlWhere
	w.add(accountsVisible(&w, f.Scope, "a.id"))
	if key != "" {
		w.add("a.id > ?", key)
	}
	w.eq("a.kind", f.Kind)
	w.eq("a.owner", f.Owner)
	w.eq("a.currency", f.Currency)
	q := `SELECT a.id, a.kind, a.owner, a.currency,
		coalesce((SELECT trim_scale(sum(e.amount)) FROM ledger_entries e WHERE e.account = a.id), 0)::text
		FROM accounts a` + w.sql() + " ORDER BY a.id LIMIT " + w.param(first+1)
	return listPage(ctx, s, "accounts", q, w.args, first, func(row pgx.CollectableRow) (AccountRow, error) {
		var a AccountRow
		err := row.Scan(&a.ID, &a.Kind, &a.Owner, &a.Currency, &a.Balance)
		return a, err
	})
}

// BalanceRow is an account's balance at an instant.
type BalanceRow struct {
	Account, Currency string
	// Value is the sum of the account's entries posted at or before At
	// (every entry, when At is the time of the answer).
	Value string
	At    time.Time
}

// AccountBalance returns Balance of the account whose id is account as of
// at, or now (every entry) when at is zero; found is false if there is no
// such account or none scope lets through (the two look alike).
func (s *Store) AccountBalance(ctx context.Context, scope Scope, account string, at time.Time) (b BalanceRow, found bool, err error) {
	var w sqlWhere
	w.add("a.id = ?", account)
	w.add(accountsVisible(&w, scope, "a.id"))
	err = s.pool.QueryRow(ctx, `SELECT a.id, a.currency, now() FROM accounts a`+w.sql(), w.args...).Scan(&b.Account, &b.Currency, &b.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return BalanceRow{}, false, nil
	}
	if err != nil {
		return BalanceRow{}, false, fmt.Errorf("ledger: balance: %w", err)
	}
	asOf := sql.Null[time.Time]{V: at, Valid: !at.IsZero()}
	if asOf.Valid {
		b.At = at
	}
	if b.Value, err = s.Balance(ctx, b.Account, asOf); err != nil {
		return BalanceRow{}, false, err
	}
	return b, true, nil
}

// Transactions.

// TransactionFilter selects ledger transactions; empty fields and zero
// times match everything.
type TransactionFilter struct {
	// Scope is whose transactions may be returned, whatever the rest
	// selects: a restricted scope sees the transactions with an entry in
	// one of its accounts.
	Scope Scope
	// Account selects the transactions with an entry in it.
	Account string
	Kind    string
	// Session is a sessions id.
	Session string
	// From (inclusive) and To (exclusive) bound posted_at.
	From, To time.Time
}

const transactionCursor = "transaction"

// Cursor returns the transaction's cursor in ListTransactions.
func (t Transaction) Cursor() string {
	return encodeCursor(transactionCursor, strconv.FormatInt(t.Seq, 10))
}

// ListTransactions returns up to first transactions f selects, in seq
// order (the order of the hash chain), starting after the transaction
// whose cursor is after ("" for the first page).
func (s *Store) ListTransactions(ctx context.Context, f TransactionFilter, first int, after string) (Page[Transaction], error) {
	if err := checkPageSize(first); err != nil {
		return Page[Transaction]{}, err
	}
	if err := checkKind("filter.kind", f.Kind); err != nil {
		return Page[Transaction]{}, err
	}
	if err := checkTimeRange("filter.to", f.From, f.To); err != nil {
		return Page[Transaction]{}, err
	}
	afterSeq, err := decodeIDCursor(transactionCursor, after)
	if err != nil {
		return Page[Transaction]{}, err
	}
	var w sqlWhere
	f.where(&w)
	if afterSeq > 0 {
		w.add("t.seq > ?", afterSeq)
	}
	items, err := s.transactions(ctx, w, first+1)
	if err != nil {
		return Page[Transaction]{}, err
	}
	p := Page[Transaction]{Items: items}
	if len(items) > first {
		p.Items, p.HasNextPage = items[:first], true
	}
	return p, nil
}

// TransactionBySeq returns the transaction at seq if scope lets it be
// seen; found is false if there is none, or none the scope lets through.
func (s *Store) TransactionBySeq(ctx context.Context, scope Scope, seq int64) (t Transaction, found bool, err error) {
	var w sqlWhere
	TransactionFilter{Scope: scope}.where(&w)
	w.add("t.seq = ?", seq)
	items, err := s.transactions(ctx, w, 1)
	if err != nil || len(items) == 0 {
		return Transaction{}, false, err
	}
	return items[0], true, nil
}

// where adds f's conditions on ledger_transactions t to w, its scope
// first.
func (f TransactionFilter) where(w *sqlWhere) {
	scopeTouches(w, f.Scope, "t")
	if f.Account != "" {
		w.add("EXISTS (SELECT 1 FROM ledger_entries fe WHERE fe.transaction_seq = t.seq AND fe.account = ?)", f.Account)
	}
	w.eq("t.kind", f.Kind)
	w.eq("t.session", f.Session)
	if !f.From.IsZero() {
		w.add("t.posted_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		w.add("t.posted_at < ?", f.To)
	}
}

// transactions reads up to limit transactions w selects, in seq order,
// with their entries, from one snapshot.
func (s *Store) transactions(ctx context.Context, w sqlWhere, limit int) ([]Transaction, error) {
	q := `SELECT t.seq, t.id, t.kind, t.session, t.reverses, t.posted_at, t.prev_hash, t.hash
		FROM ledger_transactions t` + w.sql() + " ORDER BY t.seq LIMIT " + w.param(limit)
	var items []Transaction
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, w.args...)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Transaction, error) {
			var t Transaction
			err := row.Scan(&t.Seq, &t.ID, &t.Kind, &t.Session, &t.Reverses, &t.PostedAt, &t.PrevHash, &t.Hash)
			return t, err
		})
		if err != nil {
			return err
		}
		return addEntries(ctx, tx, items)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: transactions: %w", err)
	}
	return items, nil
}

// addEntries reads the entries of ts, by account.
func addEntries(ctx context.Context, tx pgx.Tx, ts []Transaction) error {
	if len(ts) == 0 {
		return nil
	}
	at := make(map[int64]int, len(ts))
	seqs := make([]int64, len(ts))
	for i, t := range ts {
		at[t.Seq], seqs[i] = i, t.Seq
	}
	rows, err := tx.Query(ctx, `SELECT transaction_seq, account, trim_scale(amount)::text
		FROM ledger_entries WHERE transaction_seq = ANY($1) ORDER BY transaction_seq, account`, seqs)
	if err != nil {
		return err
	}
	var seq int64
	var e Entry
	_, err = pgx.ForEachRow(rows, []any{&seq, &e.Account, &e.Amount}, func() error {
		i := at[seq]
		ts[i].Entries = append(ts[i].Entries, e)
		return nil
	})
	return err
}

// Payouts.

// PayoutFilter selects payouts; empty fields and zero times match
// everything.
type PayoutFilter struct {
	// Scope is whose payouts may be returned, whatever the rest selects.
	Scope                          Scope
	Application, Service, Supplier string
	Kind                           string
	// Session is a sessions id.
	Session string
	// From (inclusive) and To (exclusive) bound posted_at.
	From, To time.Time
}

// PayoutRow is a ledger transaction read as a payment, in one currency (a
// transaction has entries in one currency, but for an adjustment of late
// relays priced at tariffs of several): the application's debit is Gross,
// the fees' credit Fee, the supplier's credit SupplierAmount = Gross - Fee.
// All are exact decimals.
type PayoutRow struct {
	Seq                            int64
	ID                             string
	Kind                           string
	Session                        sql.Null[string]
	Application, Service, Supplier string
	Gross, Fee, SupplierAmount     string
	Currency                       string
	PostedAt                       time.Time
}

const payoutCursor = "payout"

// Cursor returns the payout's cursor in ListPayouts.
func (p PayoutRow) Cursor() string {
	return encodeCursor(payoutCursor, strconv.FormatInt(p.Seq, 10)+"_"+p.Currency)
}

// ListPayouts returns up to first payouts f selects, newest first (by seq,
// then currency), starting after the payout whose cursor is after ("" for
// the first page).
func (s *Store) ListPayouts(ctx context.Context, f PayoutFilter, first int, after string) (Page[PayoutRow], error) {
	if err := checkPageSize(first); err != nil {
		return Page[PayoutRow]{}, err
	}
	if err := checkKind("filter.kind", f.Kind); err != nil {
		return Page[PayoutRow]{}, err
	}
	if err := checkTimeRange("filter.to", f.From, f.To); err != nil {
		return Page[PayoutRow]{}, err
	}
	key, err := decodeCursor(payoutCursor, after)
	if err != nil {
		return Page[PayoutRow]{}, err
	}
	var w sqlWhere
	scopeTouches(&w, f.Scope, "t")
	if key != "" {
		seqText, currency, _ := strings.Cut(key, "_")
		seq, err := strconv.ParseInt(seqText, 10, 64)
		if err != nil || seq < 1 || currency == "" {
			return Page[PayoutRow]{}, &InvalidInputError{Field: "after", Reason: "not a cursor of this list"}
		}
		w.add("t.seq <= ? AND (t.seq < ? OR p.currency > ?)", seq, seq, currency)
	}
	if f.Application != "" {
		w.add(touches(&w, "t", AccountApplication, f.Application))
	}
	if f.Supplier != "" {
		w.add(touches(&w, "t", AccountSupplier, f.Supplier))
	}
	w.eq("x.service", f.Service)
	w.eq("t.kind", f.Kind)
	w.eq("t.session", f.Session)
	if !f.From.IsZero() {
		w.add("t.posted_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		w.add("t.posted_at < ?", f.To)
	}
	q := `SELECT t.seq, t.id, t.kind, t.session, t.posted_at, coalesce(x.service, ''),
			coalesce(p.application, x.application, ''), coalesce(p.supplier, x.supplier, ''), p.currency,
			trim_scale(-p.gross)::text, trim_scale(p.fee)::text, trim_scale(p.supplier_amount)::text
		FROM ledger_transactions t
		LEFT JOIN sessions x ON x.id = t.session
		CROSS JOIN LATERAL (SELECT a.currency,
				max(a.owner) FILTER (WHERE a.kind = 'application') AS application,
				max(a.owner) FILTER (WHERE a.kind = 'supplier') AS supplier,
				coalesce(sum(e.amount) FILTER (WHERE a.kind = 'application'), 0) AS gross,
				coalesce(sum(e.amount) FILTER (WHERE a.kind = 'fees'), 0) AS fee,
				coalesce(sum(e.amount) FILTER (WHERE a.kind = 'supplier'), 0) AS supplier_amount
			FROM ledger_entries e JOIN accounts a ON a.id = e.account WHERE e.transaction_seq = t.seq
			GROUP BY a.currency) p` +
		w.sql() + " ORDER BY t.seq DESC, p.currency LIMIT " + w.param(first+1)
	return listPage(ctx, s, "payouts", q, w.args, first, func(row pgx.CollectableRow) (PayoutRow, error) {
		var p PayoutRow
		err := row.Scan(&p.Seq, &p.ID, &p.Kind, &p.Session, &p.PostedAt, &p.Service, &p.Application, &p.Supplier,
			&p.Currency, &p.Gross, &p.Fee, &p.SupplierAmount)
		return p, err
	})
}
