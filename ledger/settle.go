package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/relaymeter/relaymeter/chain"
)

// SettleParams says when the next window may settle; SettleNext checks it
// under the settlement lock.
type SettleParams struct {
	// Group and Topic name the meter's partitions, Partitions how many the
	// topic has: every one must have a clock at or past the window's end
	// plus Delay.
	Group, Topic string
	Partitions   int
	Delay        time.Duration
	// Head is the chain's latest height: it must be at least the window's
	// end plus GraceBlocks.
	Head        int64
	GraceBlocks int64
	// Now is the posting time (zero: the wall clock).
	Now time.Time

	// failAt, set by tests, fails the settlement after the named step.
	failAt func(step string) error
}

// Settled is what one settlement posted.
type Settled struct {
	Window       ChainSession
	Sessions     int
	Transactions int
	// LateRelays counts the findings the settlement adjusted.
	LateRelays int
}

// SettleNext settles the window after the last settled one, when it is
// over (its end known, the chain Grace blocks past it, every partition
// metered past it), and reports whether it did. In one transaction,
// serialized by the settlement_state row lock, it computes every
// (application, service, supplier)'s relays and units of the window from
// the crossed messages whose RelayAt is in it (for the first window, every
// one before its end), prices them with the tariff and fee in force at the
// window's start, stores a sessions row each, posts a settlement
// transaction each (application debited, supplier and fees credited), an
// adjustment for the late relays and the messages taken back since the
// last settlement (each priced at its own window's start), resolves their
// findings and moves the settled end. A crash anywhere leaves none of it;
// a second settler waits on the lock and then finds the window settled.
func (s *Store) SettleNext(ctx context.Context, p SettleParams) (Settled, bool, error) {
	var out Settled
	var done bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, done, err = settleNext(ctx, tx, &p)
		return err
	})
	if err != nil {
		return Settled{}, false, fmt.Errorf("ledger: settle: %w", err)
	}
	return out, done, nil
}

// unitKey is a settlement unit's (application, service, supplier).
type unitKey struct{ application, service, supplier string }

func (a unitKey) less(b unitKey) bool {
	if a.application != b.application {
		return a.application < b.application
	}
	if a.service != b.service {
		return a.service < b.service
	}
	return a.supplier < b.supplier
}

// unitTotals is what a settlement unit relayed in the window and its price.
type unitTotals struct {
	relays, units int64
	price         sql.Null[string]
	currency      string
	feeBps        int64
}

// adjustment is what late relays and take-backs change for a unit, by
// currency, and the findings it resolves.
type adjustment struct {
	lines    map[string][]Line // by currency
	findings []int64
}

func settleNext(ctx context.Context, tx pgx.Tx, p *SettleParams) (Settled, bool, error) {
	var through int64
	var until pgtype.Timestamptz
	if err := tx.QueryRow(ctx, `SELECT settled_through_height, settled_until FROM settlement_state FOR UPDATE`).Scan(&through, &until); err != nil {
		return Settled{}, false, fmt.Errorf("lock: %w", err)
	}
	w, err := scanChainSession(tx.QueryRow(ctx, `SELECT `+chainSessionColumns+` FROM chain_sessions
		WHERE start_height > $1 ORDER BY start_height LIMIT 1`, through))
	if errors.Is(err, pgx.ErrNoRows) {
		return Settled{}, false, nil
	}
	if err != nil {
		return Settled{}, false, fmt.Errorf("next window: %w", err)
	}
	if !w.EndsAt.Valid || p.Head < w.EndHeight+p.GraceBlocks {
		return Settled{}, false, nil
	}
	var passed int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM consumer_offsets WHERE group_id = $1 AND topic = $2
		AND kafka_partition < $3 AND clock >= $4`, p.Group, p.Topic, p.Partitions, w.EndsAt.V.Add(p.Delay)).Scan(&passed); err != nil {
		return Settled{}, false, fmt.Errorf("partition clocks: %w", err)
	}
	if passed < p.Partitions {
		return Settled{}, false, nil
	}
	if err := p.fail("lock"); err != nil {
		return Settled{}, false, err
	}
	totals, err := windowTotals(ctx, tx, until, w)
	if err != nil {
		return Settled{}, false, err
	}
	if err := p.fail("totals"); err != nil {
		return Settled{}, false, err
	}
	adjust, n, err := pendingAdjustments(ctx, tx)
	if err != nil {
		return Settled{}, false, err
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	po := &posting{w: w, now: now.UTC().Truncate(time.Microsecond)}
	if err := po.build(totals, adjust); err != nil {
		return Settled{}, false, err
	}
	if err := po.store(ctx, tx, p); err != nil {
		return Settled{}, false, err
	}
	if _, err := tx.Exec(ctx, `UPDATE settlement_state SET settled_through_height = $1, settled_until = $2`,
		w.EndHeight, w.EndsAt.V); err != nil {
		return Settled{}, false, fmt.Errorf("move settled end: %w", err)
	}
	if err := p.fail("state"); err != nil {
		return Settled{}, false, err
	}
	return Settled{Window: w, Sessions: len(po.sessions), Transactions: len(po.txs), LateRelays: n}, true, nil
}

func (p *SettleParams) fail(step string) error {
	if p.failAt == nil {
		return nil
	}
	return p.failAt(step)
}

// priceAtSQL is the tariff and fee in force at $at for the unit g: the
// application's own tariff before the service's default.
const priceAtSQL = `LEFT JOIN LATERAL (SELECT t.price_per_unit, t.currency FROM tariffs t
		WHERE t.service = g.service AND t.application IN (g.application, '') AND t.effective_from <= %[1]s
		ORDER BY t.application = '', t.effective_from DESC LIMIT 1) t ON true
	LEFT JOIN LATERAL (SELECT f.fee_bps FROM service_fees f WHERE f.service = g.service AND f.effective_from <= %[1]s
		ORDER BY f.effective_from DESC LIMIT 1) f ON true`

// windowTotals sums, per unit, the crossed relays whose RelayAt is in
// [from, w's end) and prices them at w's start. RelayAt is never after the
// message's observed time, so only messages observed from `from` on are
// read (a BRIN range). RelayAt is computed once per message (OFFSET 0 keeps
// the subquery whole), the messages meet their streams in a hash join
// (nested loops off: on a table whose statistics lag a burst of inserts,
// the planner would loop over every stream for every message), and are
// summed per stream before per unit. JIT is off: the subplan's cost
// estimate would have it compile for seconds (4.5 s of 8 s measured on
// 200 k relays).
func windowTotals(ctx context.Context, tx pgx.Tx, from pgtype.Timestamptz, w ChainSession) (map[unitKey]*unitTotals, error) {
	if _, err := tx.Exec(ctx, `SET LOCAL enable_nestloop = off; SET LOCAL work_mem = '64MB'; SET LOCAL jit = off`); err != nil {
		return nil, fmt.Errorf("window totals: %w", err)
	}
	rows, err := tx.Query(ctx, `WITH per AS (
			SELECT s.stream_id, s.application, s.service, s.supplier, s.compute_units, sum(m.units)::bigint AS relays
			FROM (SELECT m.stream_id, m.seq, m.direction, m.units, m.absorbed_by_edge, `+relayAtSQL+` AS at
				FROM messages m WHERE m.observed_at >= $1 AND m.units > 0 OFFSET 0) m
			JOIN streams s ON s.stream_id = m.stream_id
			WHERE m.at >= $1 AND m.at < $2 AND `+crossedSQL+`
			GROUP BY s.stream_id)
		SELECT application, service, supplier, sum(relays)::bigint, sum(relays * compute_units)::bigint
		FROM per GROUP BY application, service, supplier`, from, w.EndsAt.V)
	if err != nil {
		return nil, fmt.Errorf("window totals: %w", err)
	}
	out := map[unitKey]*unitTotals{}
	var k unitKey
	var u unitTotals
	_, err = pgx.ForEachRow(rows, []any{&k.application, &k.service, &k.supplier, &u.relays, &u.units}, func() error {
		v := u
		out[k] = &v
		return nil
	})
	if err == nil {
		_, err = tx.Exec(ctx, `SET LOCAL enable_nestloop TO DEFAULT; SET LOCAL work_mem TO DEFAULT; SET LOCAL jit TO DEFAULT`)
	}
	if err != nil {
		return nil, fmt.Errorf("window totals: %w", err)
	}
	for k, u := range out {
		if err := tx.QueryRow(ctx, `SELECT t.price_per_unit::text, coalesce(t.currency, ''), coalesce(f.fee_bps, 0)
			FROM (SELECT $1::text AS service, $2::text AS application) g `+fmt.Sprintf(priceAtSQL, "$3"),
			k.service, k.application, w.StartsAt).Scan(&u.price, &u.currency, &u.feeBps); err != nil {
			return nil, fmt.Errorf("window price of %s/%s: %w", k.application, k.service, err)
		}
	}
	return out, nil
}

// pendingAdjustments reads the unresolved late_relay and
// uncrossed_after_settlement findings, each priced at the start of its
// relays' window (its own time before the first window): a late relay adds
// its units when it crossed, a take-back subtracts them. It returns them
// by unit, and how many findings there are.
func pendingAdjustments(ctx context.Context, tx pgx.Tx) (map[unitKey]*adjustment, int, error) {
	rows, err := tx.Query(ctx, `WITH g AS (
			SELECT f.id, f.kind, s.application, s.service, s.supplier, m.units * s.compute_units AS units,
				`+crossedSQL+` AS crossed, `+relayAtSQL+` AS at
			FROM findings f
			JOIN messages m ON m.stream_id = f.stream_id AND m.seq = f.seq
			JOIN streams s ON s.stream_id = m.stream_id
			WHERE f.resolved_at IS NULL AND f.kind IN ($1, $2))
		SELECT g.id, g.kind, g.application, g.service, g.supplier, g.units, g.crossed, t.price_per_unit::text,
			coalesce(t.currency, ''), coalesce(f.fee_bps, 0)
		FROM g LEFT JOIN LATERAL (SELECT c.starts_at FROM chain_sessions c WHERE c.starts_at <= g.at
			ORDER BY c.starts_at DESC LIMIT 1) w ON true
		`+fmt.Sprintf(priceAtSQL, "coalesce(w.starts_at, g.at)")+`
		ORDER BY g.id`, FindingLateRelay, FindingUncrossedAfterSettlement)
	if err != nil {
		return nil, 0, fmt.Errorf("pending adjustments: %w", err)
	}
	out := map[unitKey]*adjustment{}
	var id, units, fee int64
	var kind, currency string
	var crossed bool
	var price sql.Null[string]
	var k unitKey
	n := 0
	_, err = pgx.ForEachRow(rows, []any{&id, &kind, &k.application, &k.service, &k.supplier, &units, &crossed, &price, &currency, &fee},
		func() error {
			n++
			a := out[k]
			if a == nil {
				a = &adjustment{lines: map[string][]Line{}}
				out[k] = a
			}
			a.findings = append(a.findings, id)
			if kind == FindingUncrossedAfterSettlement {
				units = -units
			} else if !crossed {
				units = 0
			}
			if price.Valid && units != 0 {
				a.lines[currency] = append(a.lines[currency], Line{Units: units, Price: price.V, FeeBps: fee})
			}
			return nil
		})
	if err != nil {
		return nil, 0, fmt.Errorf("pending adjustments: %w", err)
	}
	return out, n, nil
}

// posting is what a settlement writes.
type posting struct {
	w        ChainSession
	now      time.Time
	sessions []Session
	txs      []Transaction
	accounts map[string]Account
	// resolved maps findings to the adjustment that settled them ("" for
	// none: nothing to move).
	resolvedIDs []int64
	resolvedTx  []*string
}

// build turns the window's totals and the pending adjustments into rows.
func (po *posting) build(totals map[unitKey]*unitTotals, adjust map[unitKey]*adjustment) error {
	keys := make([]unitKey, 0, len(totals)+len(adjust))
	for k := range totals {
		keys = append(keys, k)
	}
	for k := range adjust {
		if totals[k] == nil {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	po.accounts = map[string]Account{}
	for _, k := range keys {
		sid := chain.SessionID(po.w.StartHash, k.service, k.application, po.w.StartHeight)
		ses := Session{ID: SessionKey(sid, k.supplier), SessionID: sid, Application: k.application, Service: k.service,
			Supplier: k.supplier, StartHeight: po.w.StartHeight, EndHeight: po.w.EndHeight, Amount: "0", SettledAt: po.now}
		if t := totals[k]; t != nil {
			ses.Relays, ses.Units = t.relays, t.units
			if t.price.Valid {
				split, err := Payout(Line{Units: t.units, Price: t.price.V, FeeBps: t.feeBps})
				if err != nil {
					return err
				}
				ses.Amount, ses.Currency = split.Gross, t.currency
				po.post(ses, KindSettlement, map[string]Split{t.currency: split})
			}
		}
		if a := adjust[k]; a != nil {
			splits := map[string]Split{}
			for cur, lines := range a.lines {
				split, err := Payout(lines...)
				if err != nil {
					return err
				}
				splits[cur] = split
			}
			txID := po.post(ses, KindAdjustment, splits)
			for _, f := range a.findings {
				po.resolvedIDs = append(po.resolvedIDs, f)
				po.resolvedTx = append(po.resolvedTx, txID)
			}
		}
		po.sessions = append(po.sessions, ses)
	}
	return nil
}

// post adds the transaction of kind for ses moving splits, unless it moves
// nothing; it returns the transaction's id, or nil.
func (po *posting) post(ses Session, kind string, splits map[string]Split) *string {
	t := Transaction{ID: TransactionID(ses.SessionID, ses.Supplier, kind), Kind: kind,
		Session: sql.Null[string]{V: ses.ID, Valid: true}, PostedAt: po.now}
	add := func(kind, owner, currency, amount string) {
		if isZero(amount) {
			return
		}
		a := Account{ID: AccountID(kind, owner, currency), Kind: kind, Owner: owner, Currency: currency}
		po.accounts[a.ID] = a
		t.Entries = append(t.Entries, Entry{Account: a.ID, Amount: amount})
	}
	for cur, sp := range splits {
		add(AccountApplication, ses.Application, cur, negate(sp.Gross))
		add(AccountSupplier, ses.Supplier, cur, sp.Supplier)
		add(AccountFees, ses.Service, cur, sp.Fee)
	}
	if len(t.Entries) == 0 {
		return nil
	}
	po.txs = append(po.txs, t)
	return &t.ID
}

// store writes the posting: accounts, sessions, the transactions chained to
// the ledger's last, their entries, and the findings they resolve.
func (po *posting) store(ctx context.Context, tx pgx.Tx, p *SettleParams) error {
	if err := insertAccounts(ctx, tx, po.accounts); err != nil {
		return err
	}
	if err := insertSessions(ctx, tx, po.sessions); err != nil {
		return err
	}
	if err := p.fail("sessions"); err != nil {
		return err
	}
	if len(po.txs) > 0 {
		var seq int64
		prev := make([]byte, 32)
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM ledger_transactions ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("last transaction: %w", err)
		}
		for i := range po.txs {
			t := &po.txs[i]
			seq++
			t.Seq, t.PrevHash = seq, prev
			if t.Hash, err = TransactionHash(prev, t); err != nil {
				return err
			}
			prev = t.Hash
		}
		if err := insertTransactions(ctx, tx, po.txs); err != nil {
			return err
		}
	}
	if err := p.fail("transactions"); err != nil {
		return err
	}
	if len(po.resolvedIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE findings f SET resolved_at = $3, transaction_id = r.tx
			FROM unnest($1::bigint[], $2::text[]) AS r(id, tx) WHERE f.id = r.id AND f.resolved_at IS NULL`,
			po.resolvedIDs, po.resolvedTx, po.now); err != nil {
			return fmt.Errorf("resolve late relays: %w", err)
		}
	}
	return p.fail("findings")
}

func insertAccounts(ctx context.Context, tx pgx.Tx, accounts map[string]Account) error {
	if len(accounts) == 0 {
		return nil
	}
	var id, kind, owner, cur []string
	for _, a := range accounts {
		id, kind, owner, cur = append(id, a.ID), append(kind, a.Kind), append(owner, a.Owner), append(cur, a.Currency)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO accounts (id, kind, owner, currency)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`, id, kind, owner, cur); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}

func insertSessions(ctx context.Context, tx pgx.Tx, ss []Session) error {
	if len(ss) == 0 {
		return nil
	}
	n := len(ss)
	id, sid, app, svc, sup, amount, cur := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	start, end, relays, units := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	at := make([]time.Time, n)
	for i, s := range ss {
		id[i], sid[i], app[i], svc[i], sup[i], amount[i], cur[i] = s.ID, s.SessionID, s.Application, s.Service, s.Supplier, s.Amount, s.Currency
		start[i], end[i], relays[i], units[i], at[i] = s.StartHeight, s.EndHeight, s.Relays, s.Units, s.SettledAt
	}
	if _, err := tx.Exec(ctx, `INSERT INTO sessions (id, session_id, application, service, supplier, start_height, end_height,
			relays, units, amount, currency, settled_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[],
			$8::bigint[], $9::bigint[], $10::numeric[], $11::text[], $12::timestamptz[])`,
		id, sid, app, svc, sup, start, end, relays, units, amount, cur, at); err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	return nil
}

func insertTransactions(ctx context.Context, tx pgx.Tx, txs []Transaction) error {
	n := len(txs)
	seq, id, kind := make([]int64, n), make([]string, n), make([]string, n)
	session, reverses := make([]*string, n), make([]*string, n)
	posted := make([]time.Time, n)
	prev, hash := make([][]byte, n), make([][]byte, n)
	var eseq []int64
	var eacc, eamt []string
	for i := range txs {
		t := &txs[i]
		seq[i], id[i], kind[i], session[i], reverses[i] = t.Seq, t.ID, t.Kind, ptr(t.Session), ptr(t.Reverses)
		posted[i], prev[i], hash[i] = t.PostedAt, t.PrevHash, t.Hash
		for _, e := range t.Entries {
			eseq, eacc, eamt = append(eseq, t.Seq), append(eacc, e.Account), append(eamt, e.Amount)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ledger_transactions (seq, id, kind, session, reverses, posted_at, prev_hash, hash)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bytea[], $8::bytea[])`,
		seq, id, kind, session, reverses, posted, prev, hash); err != nil {
		return fmt.Errorf("transactions: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ledger_entries (transaction_seq, account, amount)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::numeric[])`, eseq, eacc, eamt); err != nil {
		return fmt.Errorf("entries: %w", err)
	}
	return nil
}
