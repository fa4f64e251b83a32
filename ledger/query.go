package ledger

// The read side: what the GraphQL API asks of the ledger. Every list is a
// keyset page (a cursor names the last row seen, never an offset), so a
// page costs the same however deep it is and rows written meanwhile never
// shift a page.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// MaxPageSize is the largest page a list query returns.
const MaxPageSize = 1000

// InvalidInputError reports a query argument the ledger cannot use: a
// malformed or foreign cursor, a page size out of range, an impossible
// filter. It is the caller's mistake, safe to show to the caller.
type InvalidInputError struct {
	Field  string // the argument at fault, e.g. "after", "first", "filter.to"
	Reason string
}

func (e *InvalidInputError) Error() string {
	return fmt.Sprintf("ledger: invalid %s: %s", e.Field, e.Reason)
}

// IsInvalidInput reports whether err is, or wraps, an *InvalidInputError.
func IsInvalidInput(err error) bool {
	var e *InvalidInputError
	return errors.As(err, &e)
}

// Cursored is a row of a list: it names its own place in the list.
type Cursored interface {
	// Cursor returns an opaque cursor: passed as "after", the next page
	// starts with the row following this one.
	Cursor() string
}

// Page is one page of a list, in the list's order.
type Page[T Cursored] struct {
	Items []T
	// HasNextPage reports whether rows follow the last item.
	HasNextPage bool
}

// EndCursor returns the cursor of the page's last item, or "" for an empty
// page.
func (p Page[T]) EndCursor() string {
	if len(p.Items) == 0 {
		return ""
	}
	return p.Items[len(p.Items)-1].Cursor()
}

// checkPageSize validates a page size: 0 to MaxPageSize.
func checkPageSize(first int) error {
	if first < 0 || first > MaxPageSize {
		return &InvalidInputError{Field: "first", Reason: fmt.Sprintf("must be between 0 and %d, got %d", MaxPageSize, first)}
	}
	return nil
}

// Cursors are base64url (unpadded) of "<kind>:<key>", so a cursor from one
// list is rejected by another instead of silently meaning something else.

func encodeCursor(kind, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + key))
}

// decodeCursor returns the key of a cursor of the given kind; "" decodes
// to "" (from the start).
func decodeCursor(kind, cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", &InvalidInputError{Field: "after", Reason: "not a cursor"}
	}
	k, key, ok := strings.Cut(string(raw), ":")
	if !ok || k != kind || key == "" {
		return "", &InvalidInputError{Field: "after", Reason: "not a cursor of this list"}
	}
	return key, nil
}

// decodeIDCursor decodes a cursor whose key is a positive integer; 0 means
// from the start.
func decodeIDCursor(kind, cursor string) (int64, error) {
	key, err := decodeCursor(kind, cursor)
	if err != nil || key == "" {
		return 0, err
	}
	id, err := strconv.ParseInt(key, 10, 64)
	if err != nil || id < 0 {
		return 0, &InvalidInputError{Field: "after", Reason: "not a cursor of this list"}
	}
	return id, nil
}

// sqlWhere accumulates SQL conditions with numbered parameters.
type sqlWhere struct {
	conds []string
	args  []any
}

// add appends a condition in which every "?" stands for the next of args.
func (w *sqlWhere) add(cond string, args ...any) {
	for _, a := range args {
		w.args = append(w.args, a)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

// eq adds "col = value" unless value is empty.
func (w *sqlWhere) eq(col, value string) {
	if value != "" {
		w.add(col+" = ?", value)
	}
}

// sql returns " WHERE a AND b …", or "" without conditions.
func (w *sqlWhere) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// param appends a parameter without a condition and returns its
// placeholder.
func (w *sqlWhere) param(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// checkTimeRange rejects a time range whose end precedes its start.
func checkTimeRange(field string, from, to time.Time) error {
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return &InvalidInputError{Field: field, Reason: "to is before from"}
	}
	return nil
}

// UsageFilter selects usage rollups. Empty strings and zero times match
// everything.
type UsageFilter struct {
	// Scope is whose usage may be counted, whatever the rest selects.
	Scope                                    Scope
	Service, Application, Supplier, Protocol string
	// From and To are truncated to the minute, the rollups' granularity:
	// usage counts the minutes m with From ≤ m < To, so From is inclusive
	// and To exclusive.
	From, To time.Time
}

// Usage is what was metered: totals over usage_minutes.
type Usage struct {
	Messages int64 // messages metered
	Relays   int64 // relays they yielded
	Units    int64 // units of work (relays × compute units per relay)
	Bytes    int64 // wire bytes of the messages
}

// Usage sums the usage rollups f selects.
func (s *Store) Usage(ctx context.Context, f UsageFilter) (Usage, error) {
	if err := checkTimeRange("filter.to", f.From, f.To); err != nil {
		return Usage{}, err
	}
	var w sqlWhere
	f.where(&w)
	q := `SELECT coalesce(sum(messages), 0)::bigint, coalesce(sum(relays), 0)::bigint,
		coalesce(sum(units), 0)::bigint, coalesce(sum(bytes), 0)::bigint
		FROM usage_minutes` + w.sql()
	var u Usage
	if err := s.pool.QueryRow(ctx, q, w.args...).Scan(&u.Messages, &u.Relays, &u.Units, &u.Bytes); err != nil {
		return Usage{}, fmt.Errorf("ledger: usage: %w", err)
	}
	return u, nil
}

// where adds f's conditions on usage_minutes to w, its scope first.
func (f UsageFilter) where(w *sqlWhere) {
	f.Scope.apply(w, "application", "supplier")
	if !f.From.IsZero() {
		w.add("minute >= ?", f.From.UTC().Truncate(time.Minute))
	}
	if !f.To.IsZero() {
		w.add("minute < ?", f.To.UTC().Truncate(time.Minute))
	}
	w.eq("service", f.Service)
	w.eq("application", f.Application)
	w.eq("supplier", f.Supplier)
	w.eq("protocol", f.Protocol)
}

// ServiceRow is a configured service as the API shows it.
type ServiceRow struct {
	ID       string
	Protocol string
	Policy   Policy
	// PricePerUnit is the service's default tariff in force now, an
	// exact decimal, "0" without one.
	PricePerUnit         string
	ComputeUnitsPerRelay int64
	SessionSeconds       int32
	CreatedAt, UpdatedAt time.Time
}

// ListServices returns every configured service with its current price
// and policy, by id.
func (s *Store) ListServices(ctx context.Context) ([]ServiceRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT s.id, s.protocol, p.id, p.name, p.version, p.params,
		coalesce((SELECT t.price_per_unit FROM tariffs t WHERE t.service = s.id AND t.application = ''
			AND t.effective_from <= now() ORDER BY t.effective_from DESC LIMIT 1), 0)::text,
		s.compute_units_per_relay, s.session_seconds, s.created_at, s.updated_at
		FROM services s
		JOIN LATERAL (SELECT policy_id FROM service_policies sp WHERE sp.service = s.id AND sp.effective_from <= now()
			ORDER BY sp.effective_from DESC LIMIT 1) cur ON true
		JOIN policies p ON p.id = cur.policy_id ORDER BY s.id`)
	if err != nil {
		return nil, fmt.Errorf("ledger: services: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ServiceRow, error) {
		var r ServiceRow
		err := row.Scan(&r.ID, &r.Protocol, &r.Policy.ID, &r.Policy.Name, &r.Policy.Version, &r.Policy.Params,
			&r.PricePerUnit, &r.ComputeUnitsPerRelay, &r.SessionSeconds, &r.CreatedAt, &r.UpdatedAt)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: services: %w", err)
	}
	if out == nil {
		out = []ServiceRow{}
	}
	return out, nil
}

// listPage runs q, which must end in "LIMIT <first+1>", and returns its first
// rows as a page.
func listPage[T Cursored](ctx context.Context, s *Store, what, q string, args []any, first int, scan func(pgx.CollectableRow) (T, error)) (Page[T], error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return Page[T]{}, fmt.Errorf("ledger: %s: %w", what, err)
	}
	items, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return Page[T]{}, fmt.Errorf("ledger: %s: %w", what, err)
	}
	p := Page[T]{Items: items}
	if len(items) > first {
		p.Items, p.HasNextPage = items[:first], true
	}
	return p, nil
}
