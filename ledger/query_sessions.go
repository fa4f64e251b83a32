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
// a session of a window not settled yet, summed from its messages on
// read.
type SessionRow struct {
	// ID is relaymeter's id of the settlement unit (SessionID, Supplier).
	ID string
	// SessionID is the session id of (application, service, window).
	SessionID                      string
	Application, Service, Supplier string
	StartHeight, EndHeight         int64
	State                          SessionState
	StartsAt                       time.Time
	EndsAt                         sql.Null[time.Time] // unknown while the window's end block is
	SettledAt                      sql.Null[time.Time]
	Relays, Units                  int64
	// Amount is units times the price in force at StartsAt, an exact
	// decimal; "0" without a tariff, and then Currency is "".
	Amount   string
	Currency string
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
// between them.
func (s *Store) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
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
		through, err := settledThrough(ctx, tx)
		if err != nil {
			return err
		}
		if f.State != SessionSettled && (!hasCur || cur.height > through) {
			open, err := unsettledSessions(ctx, tx, f, through)
			if err != nil {
				return err
			}
			for _, r := range open {
				if !hasCur || cur.before(sessionKey{r.StartHeight, r.ID}) {
					items = append(items, r)
				}
				if len(items) > first {
					break
				}
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
		through, err := settledThrough(ctx, tx)
		if err != nil {
			return err
		}
		open, err := unsettledSessions(ctx, tx, SessionFilter{Scope: scope}, through)
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

// settledThrough is the end height of the last settled window, 0 before
// any.
func settledThrough(ctx context.Context, tx pgx.Tx) (int64, error) {
	var h int64
	err := tx.QueryRow(ctx, `SELECT coalesce(max(settled_through_height), 0) FROM settlement_state`).Scan(&h)
	return h, err
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
// above the settled height that f selects (all of them are OPEN or
// CLOSED), in the order of ListSessions. A relay's window is the one its
// time (RelayTime) falls in; only crossed messages count, as in usage and
// settlement. Only the messages observed since the first unsettled window
// started are read: a relay's time is never after its message's.
func unsettledSessions(ctx context.Context, tx pgx.Tx, f SessionFilter, through int64) ([]SessionRow, error) {
	var w sqlWhere
	w.add("c.start_height > ?", through)
	f.windowTimes(&w, "c")
	switch f.State {
	case SessionOpen:
		w.add("(c.ends_at IS NULL OR c.ends_at > now())")
	case SessionClosed:
		w.add("c.ends_at <= now()")
	}
	windows := w.sql()
	var m sqlWhere
	m.args = w.args
	f.Scope.apply(&m, "s.application", "s.supplier")
	m.add("m.units > 0")
	m.add(crossedSQL)
	m.add("m.observed_at >= (SELECT min(starts_at) FROM win)")
	m.eq("s.application", f.Application)
	m.eq("s.service", f.Service)
	m.eq("s.supplier", f.Supplier)
	q := `WITH win AS (SELECT c.start_height, c.end_height, c.starts_at, c.ends_at, c.start_hash,
			c.ends_at IS NOT NULL AND c.ends_at <= now() AS over FROM chain_sessions c` + windows + `),
		rel AS (SELECT s.application, s.service, s.supplier, m.units, m.units * s.compute_units AS cu,
			` + relayTimeSQL + ` AS at
			FROM messages m JOIN streams s ON s.stream_id = m.stream_id
			LEFT JOIN messages q ON m.direction = 2 AND q.stream_id = m.stream_id AND q.seq = m.counterpart_seq` + m.sql() + `),
		tot AS (SELECT win.start_height, rel.application, rel.service, rel.supplier,
			sum(rel.units)::bigint AS relays, sum(rel.cu)::bigint AS units
			FROM rel JOIN win ON rel.at >= win.starts_at AND (win.ends_at IS NULL OR rel.at < win.ends_at)
			GROUP BY 1, 2, 3, 4)
		SELECT win.start_height, win.end_height, win.starts_at, win.ends_at, win.start_hash, win.over,
			tot.application, tot.service, tot.supplier, tot.relays, tot.units,
			coalesce(trim_scale(tot.units * t.price_per_unit)::text, '0'), coalesce(t.currency, '')
		FROM tot JOIN win USING (start_height)
		LEFT JOIN LATERAL (SELECT t.price_per_unit, t.currency FROM tariffs t
			WHERE t.service = tot.service AND t.application IN (tot.application, '') AND t.effective_from <= win.starts_at
			ORDER BY t.application = '', t.effective_from DESC LIMIT 1) t ON true`
	rows, err := tx.Query(ctx, q, m.args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (SessionRow, error) {
		var r SessionRow
		var hash []byte
		var over bool
		err := row.Scan(&r.StartHeight, &r.EndHeight, &r.StartsAt, &r.EndsAt, &hash, &over,
			&r.Application, &r.Service, &r.Supplier, &r.Relays, &r.Units, &r.Amount, &r.Currency)
		r.State = SessionOpen
		if over {
			r.State = SessionClosed
		}
		r.SessionID = sessionIDOf(hash, r.Service, r.Application, r.StartHeight)
		r.ID = settlementUnitID(r.SessionID, r.Supplier)
		return r, err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b SessionRow) int {
		return cmp.Or(cmp.Compare(b.StartHeight, a.StartHeight), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// relayTimeSQL is the time of the relays of message m (its request's
// observation time) with q its counterpart when m is on the response side:
// a response takes the observed time of the request it answers, any
// other message its own.
const relayTimeSQL = `CASE WHEN m.direction = 2 THEN coalesce(q.observed_at, m.observed_at) ELSE m.observed_at END`
