package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/relaymeter/relaymeter/chain"
)

// SessionState is where a session stands.
type SessionState string

// The states of a session.
const (
	// SessionOpen: its window is not over (the block after its end height
	// is not known, or not reached).
	SessionOpen SessionState = "OPEN"
	// SessionClosed: its window is over, it is not settled yet.
	SessionClosed SessionState = "CLOSED"
	// SessionSettled: it has its row in sessions, final.
	SessionSettled SessionState = "SETTLED"
)

// SessionFilter selects sessions. Empty strings, an empty state and zero
// times match everything.
type SessionFilter struct {
	// Scope is whose sessions may be returned, whatever the rest selects.
	Scope                          Scope
	Application, Service, Supplier string
	State                          SessionState
	// From (inclusive) and To (exclusive) bound the start of the
	// session's window (chain_sessions.starts_at).
	From, To time.Time
}

// SessionRow is a session as the API shows it: a settled sessions row, or
// a session of a window not settled yet, summed from its messages on read
// with the columns its row will have (SettledAt zero; Relays, Units and
// Amount so far).
type SessionRow struct {
	Session
	State    SessionState
	StartsAt time.Time
	// EndsAt is the time of the block after the window: not Valid while
	// unknown.
	EndsAt sql.Null[time.Time]
}

const sessionCursor = "session"

// Cursor returns the session's cursor in ListSessions.
func (r SessionRow) Cursor() string {
	return encodeCursor(sessionCursor, strconv.FormatInt(r.StartHeight, 10)+"_"+r.ID)
}

// sessionKey is a place in the sessions' order: start height descending,
// then id ascending.
type sessionKey struct {
	height int64
	id     string
}

// before reports whether a comes before b in the order of ListSessions.
func (a sessionKey) before(b sessionKey) bool {
	return a.height > b.height || a.height == b.height && a.id < b.id
}

func decodeSessionCursor(after string) (sessionKey, bool, error) {
	key, err := decodeCursor(sessionCursor, after)
	if err != nil || key == "" {
		return sessionKey{}, false, err
	}
	h, id, ok := strings.Cut(key, "_")
	height, err := strconv.ParseInt(h, 10, 64)
	if !ok || err != nil || height < 1 || !isHexID(id) {
		return sessionKey{}, false, &InvalidInputError{Field: "after", Reason: "not a cursor of this list"}
	}
	return sessionKey{height, id}, true, nil
}

// isHexID reports whether s is 64 lowercase hex digits, as the ids of
// sessions and ledger transactions are.
func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (f SessionFilter) check() error {
	switch f.State {
	case "", SessionOpen, SessionClosed, SessionSettled:
	default:
		return &InvalidInputError{Field: "filter.state", Reason: "unknown state " + strconv.Quote(string(f.State))}
	}
	return checkTimeRange("filter.to", f.From, f.To)
}

// readTx runs fn in a read-only transaction on one snapshot, so that what
// it reads in several statements is consistent: no settlement lands
// between them. Its statements are planned for their parameters each time
// (a generic plan, which pgx's prepared statements get after five runs,
// cannot see that a bound on messages.observed_at selects the last minutes
// only, and scans the table), and not compiled: the relay time's lookup of
// each response's request costs a sum of messages an estimate above
// jit_above_cost, and compiling took 0.7 s where running takes 15 ms.
func (s *Store) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL jit = off`); err != nil {
			return err
		}
		return fn(tx)
	})
}

// ListSessions returns up to first sessions that f selects, newest first
// (by start height, then id), starting after the session whose cursor is
// after ("" for the first page). Windows settle in height order, so the
// sessions of the windows not settled yet (OPEN, CLOSED) all come before
// the settled ones: a page takes them first, summed from their messages,
// then settled rows by index. A session keeps its id and start height
// when it settles, so a cursor keeps its place across a settlement.
func (s *Store) ListSessions(ctx context.Context, f SessionFilter, first int, after string) (Page[SessionRow], error) {
	if err := checkPageSize(first); err != nil {
		return Page[SessionRow]{}, err
	}
	if err := f.check(); err != nil {
		return Page[SessionRow]{}, err
	}
	cur, hasCur, err := decodeSessionCursor(after)
	if err != nil {
		return Page[SessionRow]{}, err
	}
	var items []SessionRow
	err = s.readTx(ctx, func(tx pgx.Tx) error {
		st, err := readSettled(ctx, tx)
		if err != nil {
			return err
		}
		if f.State != SessionSettled && (!hasCur || cur.height > st.through) {
			var after *sessionKey
			if hasCur {
				after = &cur
			}
			items, err = unsettledSessions(ctx, tx, f, st, after, first+1)
			if err != nil {
				return err
			}
		}
		if len(items) > first || f.State == SessionOpen || f.State == SessionClosed {
			return nil
		}
		settled, err := settledSessions(ctx, tx, f, cur, hasCur, first+1-len(items))
		items = append(items, settled...)
		return err
	})
	if err != nil {
		return Page[SessionRow]{}, fmt.Errorf("ledger: sessions: %w", err)
	}
	p := Page[SessionRow]{Items: items}
	if len(items) > first {
		p.Items, p.HasNextPage = items[:first], true
	}
	return p, nil
}

// SessionByID returns the session whose id is id if scope lets it be seen;
// found is false if there is none, or none the scope lets through (the
// two look alike). A malformed id is invalid input.
func (s *Store) SessionByID(ctx context.Context, scope Scope, id string) (r SessionRow, found bool, err error) {
	if !isHexID(id) {
		return SessionRow{}, false, &InvalidInputError{Field: "id", Reason: "not a session id"}
	}
	err = s.readTx(ctx, func(tx pgx.Tx) error {
		var w sqlWhere
		scope.apply(&w, "x.application", "x.supplier")
		w.add("x.id = ?", id)
		rows, err := tx.Query(ctx, settledSQL+w.sql(), w.args...)
		if err != nil {
			return err
		}
		r, err = pgx.CollectExactlyOneRow(rows, scanSettled)
		if err == nil {
			found = true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// A settled session the scope may not see is none; only an id of
		// no settled session may be one of the windows not settled.
		var settled bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1)`, id).Scan(&settled); err != nil || settled {
			return err
		}
		st, err := readSettled(ctx, tx)
		if err != nil {
			return err
		}
		open, err := unsettledSessions(ctx, tx, SessionFilter{Scope: scope}, st, nil, 0)
		if err != nil {
			return err
		}
		for _, o := range open {
			if o.ID == id {
				r, found = o, true
			}
		}
		return nil
	})
	if err != nil {
		return SessionRow{}, false, fmt.Errorf("ledger: session: %w", err)
	}
	return r, found, nil
}

// settled is how far the settler went: the end height of the last settled
// window (0 before any) and its end time (-infinity before any).
type settled struct {
	through int64
	until   pgtype.Timestamptz
}

func readSettled(ctx context.Context, tx pgx.Tx) (settled, error) {
	var st settled
	err := tx.QueryRow(ctx, `SELECT settled_through_height, settled_until FROM settlement_state`).Scan(&st.through, &st.until)
	return st, err
}

// settledSQL reads sessions rows as x with their windows' times, in the
// columns scanSettled takes.
const settledSQL = `SELECT x.id, x.session_id, x.application, x.service, x.supplier, x.start_height, x.end_height,
	c.starts_at, c.ends_at, x.settled_at, x.relays, x.units, trim_scale(x.amount)::text, x.currency
	FROM sessions x JOIN chain_sessions c ON c.start_height = x.start_height`

func scanSettled(row pgx.CollectableRow) (SessionRow, error) {
	var r SessionRow
	err := row.Scan(&r.ID, &r.SessionID, &r.Application, &r.Service, &r.Supplier, &r.StartHeight, &r.EndHeight,
		&r.StartsAt, &r.EndsAt, &r.SettledAt, &r.Relays, &r.Units, &r.Amount, &r.Currency)
	r.State = SessionSettled
	return r, err
}

// settledSessions returns up to limit settled sessions f selects after
// cur (from the start without one), in the order of ListSessions.
func settledSessions(ctx context.Context, tx pgx.Tx, f SessionFilter, cur sessionKey, hasCur bool, limit int) ([]SessionRow, error) {
	var w sqlWhere
	f.Scope.apply(&w, "x.application", "x.supplier")
	if hasCur {
		w.add("x.start_height <= ? AND (x.start_height < ? OR x.id > ?)", cur.height, cur.height, cur.id)
	}
	w.eq("x.application", f.Application)
	w.eq("x.service", f.Service)
	w.eq("x.supplier", f.Supplier)
	f.windowTimes(&w, "c")
	rows, err := tx.Query(ctx, settledSQL+w.sql()+" ORDER BY x.start_height DESC, x.id LIMIT "+w.param(limit), w.args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanSettled)
}

// windowTimes adds f's bounds on the start of the windows c.
func (f SessionFilter) windowTimes(w *sqlWhere, c string) {
	if !f.From.IsZero() {
		w.add(c+".starts_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		w.add(c+".starts_at < ?", f.To)
	}
}

// unsettledSessions sums, from the messages, the sessions of the windows
// above the settled height that f selects (all of them OPEN or CLOSED), in
// the order of ListSessions, from the first after after (nil: from the
// start), at least need of them when there are (need < 1: all of them).
//
// It sums as the settler will: a window takes the crossed relays whose time
// (relayAtSQL) is from the end of the window before it (for the first
// window not settled, the settled end, so that the first window ever takes
// every relay before it) to its own end (none while unknown). Only the
// messages observed since the start of the oldest window summed are read
// (a relay's time is never after its message's), and windows are summed
// newest first, one, then two, four… more at a time until need sessions
// are found: a page costs the messages of the windows it shows, even when
// settlement has fallen far behind.
func unsettledSessions(ctx context.Context, tx pgx.Tx, f SessionFilter, st settled, after *sessionKey, need int) ([]SessionRow, error) {
	rows, err := tx.Query(ctx, `SELECT start_height, end_height, starts_at, ends_at, start_hash,
		ends_at IS NOT NULL AND ends_at <= now() FROM chain_sessions WHERE start_height > $1 ORDER BY start_height`, st.through)
	if err != nil {
		return nil, err
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (window, error) {
		var c window
		err := row.Scan(&c.StartHeight, &c.EndHeight, &c.StartsAt, &c.EndsAt, &c.StartHash, &c.over)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	var picked []window // oldest first
	low := st.until
	for i := range all {
		c := &all[i]
		c.low, c.high = low, pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
		switch {
		case c.EndsAt.Valid:
			c.high = pgtype.Timestamptz{Time: c.EndsAt.V, Valid: true}
		case i+1 < len(all):
			// The next window is known before this one's end is written.
			c.high = pgtype.Timestamptz{Time: all[i+1].StartsAt, Valid: true}
		}
		low = c.high
		if f.selects(c.ChainSession, c.over) && (after == nil || c.StartHeight <= after.height) {
			picked = append(picked, *c)
		}
	}
	var out []SessionRow
	for n, end := 1, len(picked); end > 0 && (need < 1 || len(out) < need); n *= 2 {
		start := max(0, end-n)
		if need < 1 {
			start = 0
		}
		sums, err := sumWindows(ctx, tx, f, picked[start:end])
		if err != nil {
			return nil, err
		}
		for _, r := range sums {
			if after == nil || after.before(sessionKey{r.StartHeight, r.ID}) {
				out = append(out, r)
			}
		}
		end = start
	}
	return out, nil
}

// window is a chain window not settled: over once its end has passed; its
// relays are those timed in [low, high).
type window struct {
	ChainSession
	over      bool
	low, high pgtype.Timestamptz
}

// sumWindows sums the sessions of ws (oldest first) that f selects, in the
// order of ListSessions. Each relay finds its window by a binary search of
// the windows' bounds (width_bucket), not by a join on ranges.
func sumWindows(ctx context.Context, tx pgx.Tx, f SessionFilter, ws []window) ([]SessionRow, error) {
	// Bucket b is [bounds[b-1], bounds[b]); heights[b-1] is its window's
	// start, or NULL for a gap between two windows (there is none unless
	// a filter picked windows apart).
	bounds := []pgtype.Timestamptz{ws[0].low}
	var heights []*int64
	byHeight := map[int64]*window{}
	for i := range ws {
		w := &ws[i]
		if last := bounds[len(bounds)-1]; last.InfinityModifier != w.low.InfinityModifier || !last.Time.Equal(w.low.Time) {
			bounds, heights = append(bounds, w.low), append(heights, nil)
		}
		bounds, heights = append(bounds, w.high), append(heights, &w.StartHeight)
		byHeight[w.StartHeight] = w
	}
	var m sqlWhere
	bucket := "width_bucket(" + relayAtSQL + ", " + m.param(bounds) + "::timestamptz[])"
	hs := m.param(heights) + "::bigint[]"
	nb := m.param(len(heights))
	f.Scope.apply(&m, "s.application", "s.supplier")
	m.add("m.units > 0")
	m.add(crossedSQL)
	if bounds[0].InfinityModifier == pgtype.Finite {
		// A parameter, so that the planner reads the messages by their
		// observed_at index.
		m.add("m.observed_at >= ?", bounds[0])
	}
	m.eq("s.application", f.Application)
	m.eq("s.service", f.Service)
	m.eq("s.supplier", f.Supplier)
	q := `WITH rel AS (SELECT s.application, s.service, s.supplier, m.units, m.units * s.compute_units AS cu, ` + bucket + ` AS b
			FROM messages m JOIN streams s ON s.stream_id = m.stream_id` + m.sql() + `),
		tot AS (SELECT (` + hs + `)[rel.b] AS h, rel.application, rel.service, rel.supplier,
			sum(rel.units)::bigint AS relays, sum(rel.cu)::bigint AS units
			FROM rel WHERE rel.b BETWEEN 1 AND ` + nb + ` GROUP BY 1, 2, 3, 4)
		SELECT tot.h, tot.application, tot.service, tot.supplier, tot.relays, tot.units,
			coalesce(t.price_per_unit::text, ''), coalesce(t.currency, '')
		FROM tot JOIN chain_sessions c ON c.start_height = tot.h
		LEFT JOIN LATERAL (SELECT t.price_per_unit, t.currency FROM tariffs t
			WHERE t.service = tot.service AND t.application IN (tot.application, '') AND t.effective_from <= c.starts_at
			ORDER BY t.application = '', t.effective_from DESC LIMIT 1) t ON true`
	rows, err := tx.Query(ctx, q, m.args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (SessionRow, error) {
		var r SessionRow
		var price string
		if err := row.Scan(&r.StartHeight, &r.Application, &r.Service, &r.Supplier, &r.Relays, &r.Units, &price, &r.Currency); err != nil {
			return r, err
		}
		c := byHeight[r.StartHeight]
		r.EndHeight, r.StartsAt, r.EndsAt = c.EndHeight, c.StartsAt, c.EndsAt
		r.State = SessionOpen
		if c.over {
			r.State = SessionClosed
		}
		r.SessionID = chain.SessionID(c.StartHash, r.Service, r.Application, r.StartHeight)
		r.ID = SessionKey(r.SessionID, r.Supplier)
		r.Amount = "0"
		if price != "" {
			// The settler's pricing rule: the amount is the gross.
			split, err := Payout(Line{Units: r.Units, Price: price})
			if err != nil {
				return r, err
			}
			r.Amount = split.Gross
		}
		return r, nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b SessionRow) int {
		return cmp.Or(cmp.Compare(b.StartHeight, a.StartHeight), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// selects reports whether f's state and times select the unsettled window
// c (over: its end has passed).
func (f SessionFilter) selects(c ChainSession, over bool) bool {
	switch {
	case f.State == SessionOpen && over, f.State == SessionClosed && !over:
		return false
	case !f.From.IsZero() && c.StartsAt.Before(f.From), !f.To.IsZero() && !c.StartsAt.Before(f.To):
		return false
	}
	return true
}
