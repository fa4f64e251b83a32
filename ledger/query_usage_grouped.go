package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// UsageGroup is a dimension usage can be grouped by.
type UsageGroup string

// The dimensions of UsageSeries.
const (
	GroupService     UsageGroup = "SERVICE"
	GroupApplication UsageGroup = "APPLICATION"
	GroupSupplier    UsageGroup = "SUPPLIER"
	GroupProtocol    UsageGroup = "PROTOCOL"
	// GroupMethod groups by JSON-RPC method (or the protocol's message
	// type). The rollups do not keep it: it is summed from the messages,
	// which costs a scan of the messages in the range.
	GroupMethod UsageGroup = "METHOD"
)

// Window is the length of the time buckets of UsageSeries.
type Window string

// The windows of UsageSeries; "" sums the whole range.
const (
	WindowNone   Window = ""
	WindowMinute Window = "MINUTE"
	WindowHour   Window = "HOUR"
	WindowDay    Window = "DAY"
)

// Defaults of UsageSeriesQuery's bounds.
const (
	DefaultMaxMethodRange   = 31 * 24 * time.Hour
	DefaultMethodQueryLimit = 10 * time.Second
)

// UsageSeriesQuery is what UsageSeries sums and how it groups it.
type UsageSeriesQuery struct {
	// Filter selects the usage, its scope included.
	Filter UsageFilter
	// GroupBy are the dimensions of a row, each at most once.
	GroupBy []UsageGroup
	// Window buckets the rows in time; WindowNone sums the whole range.
	Window Window
	// TimeZone is the IANA zone whose hours and days bound the windows;
	// "" is UTC.
	TimeZone string
	// Limit is the most rows the answer may have: a query that yields
	// more fails with a *TooManyRowsError. Required, positive.
	Limit int
	// MaxMethodRange bounds filter.to - filter.from when grouping by
	// method, which both must then be given; 0 means
	// DefaultMaxMethodRange (31 days).
	MaxMethodRange time.Duration
	// MethodQueryLimit bounds the time Postgres spends grouping by
	// method; 0 means DefaultMethodQueryLimit (10 s).
	MethodQueryLimit time.Duration
}

// UsageRow is one row of UsageSeries: a window and the values of the
// dimensions grouped by (zero and "" for those not grouped by), and the
// usage they had.
type UsageRow struct {
	Window                                           time.Time
	Service, Application, Supplier, Protocol, Method string
	Usage
	// Amounts is what the row's usage costs, per currency, by currency
	// code; empty without a tariff.
	Amounts []Amount
}

// TooManyRowsError is a UsageSeries answer that would exceed the query's
// Limit: the caller is to narrow the range, the filter or the grouping.
type TooManyRowsError struct {
	Limit int
}

func (e *TooManyRowsError) Error() string {
	return fmt.Sprintf("ledger: usage series: more than %d rows", e.Limit)
}

// dimension is how a UsageGroup reads from the rollups and from messages.
var dimensions = map[UsageGroup]struct{ rollup, messages string }{
	GroupService:     {"service", "s.service"},
	GroupApplication: {"application", "s.application"},
	GroupSupplier:    {"supplier", "s.supplier"},
	GroupProtocol:    {"protocol", "s.protocol"},
	GroupMethod:      {"", "m.method"},
}

var truncUnits = map[Window]string{WindowMinute: "minute", WindowHour: "hour", WindowDay: "day"}

// UsageSeries sums the usage q.Filter selects by q.Window and q.GroupBy, in
// the order of the window, then of the dimensions in q.GroupBy's order.
// Without METHOD it reads the per-minute rollups; with it, the messages
// that crossed the edge (what the rollups count), within q's bounds.
func (s *Store) UsageSeries(ctx context.Context, q UsageSeriesQuery) ([]UsageRow, error) {
	f := q.Filter
	if err := checkTimeRange("filter.to", f.From, f.To); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, &InvalidInputError{Field: "first", Reason: "must be positive"}
	}
	unit, ok := truncUnits[q.Window]
	if !ok && q.Window != WindowNone {
		return nil, &InvalidInputError{Field: "window", Reason: "unknown window " + strconv.Quote(string(q.Window))}
	}
	zone := q.TimeZone
	if zone == "" {
		zone = "UTC"
	}
	if _, err := time.LoadLocation(zone); err != nil || zone == "Local" {
		return nil, &InvalidInputError{Field: "timeZone", Reason: "not an IANA time zone: " + strconv.Quote(q.TimeZone)}
	}
	byMethod := false
	seen := map[UsageGroup]bool{}
	for _, g := range q.GroupBy {
		if _, ok := dimensions[g]; !ok {
			return nil, &InvalidInputError{Field: "groupBy", Reason: "unknown group " + strconv.Quote(string(g))}
		}
		if seen[g] {
			return nil, &InvalidInputError{Field: "groupBy", Reason: string(g) + " given twice"}
		}
		seen[g] = true
		byMethod = byMethod || g == GroupMethod
	}

	build := func(amounts bool) (string, sqlWhere, []string, error) {
		var w sqlWhere
		var cols, from string
		pick := func(d struct{ rollup, messages string }) string { return d.rollup }
		if byMethod {
			maxRange := q.MaxMethodRange
			if maxRange <= 0 {
				maxRange = DefaultMaxMethodRange
			}
			if f.From.IsZero() || f.To.IsZero() {
				return "", w, nil, &InvalidInputError{Field: "filter", Reason: "grouping by METHOD needs filter.from and filter.to"}
			}
			if f.To.Sub(f.From) > maxRange {
				return "", w, nil, &InvalidInputError{Field: "filter", Reason: fmt.Sprintf("grouping by METHOD spans at most %s; narrow from and to", maxRange)}
			}
			pick = func(d struct{ rollup, messages string }) string { return d.messages }
			f.Scope.apply(&w, "s.application", "s.supplier")
			w.add(crossedSQL)
			w.add("m.observed_at >= ?", f.From.UTC().Truncate(time.Minute))
			w.add("m.observed_at < ?", f.To.UTC().Truncate(time.Minute))
			w.eq("s.service", f.Service)
			w.eq("s.application", f.Application)
			w.eq("s.supplier", f.Supplier)
			w.eq("s.protocol", f.Protocol)
			cols = `count(*)::bigint, coalesce(sum(m.units), 0)::bigint, coalesce(sum(m.units * s.compute_units), 0)::bigint,
			coalesce(sum(m.wire_size), 0)::bigint`
			from = " FROM messages m JOIN streams s ON s.stream_id = m.stream_id"
			if amounts {
				cols = "t.currency, trim_scale(sum(m.units * s.compute_units * t.price_per_unit))::text"
				from += " " + strings.NewReplacer("u.service", "s.service", "u.application", "s.application",
					"u.minute", "date_trunc('minute', m.observed_at)").Replace(amountSQL)
			}
		} else {
			f.where(&w)
			cols = `coalesce(sum(messages), 0)::bigint, coalesce(sum(relays), 0)::bigint,
			coalesce(sum(units), 0)::bigint, coalesce(sum(bytes), 0)::bigint`
			from = " FROM usage_minutes"
			if amounts {
				cols = "t.currency, trim_scale(sum(units * t.price_per_unit))::text"
				from = " FROM usage_minutes u " + amountSQL
			}
		}
		var keys []string
		if unit != "" {
			at := "minute"
			if byMethod {
				at = "m.observed_at"
			}
			keys = append(keys, "date_trunc("+w.param(unit)+", "+at+", "+w.param(zone)+")")
		}
		for _, g := range q.GroupBy {
			keys = append(keys, pick(dimensions[g]))
		}
		sql := "SELECT " + strings.Join(append(append([]string{}, keys...), cols), ", ") + from + w.sql()
		groups := len(keys)
		if amounts {
			groups++ // and by currency
		}
		if groups > 0 {
			ordinals := make([]string, groups)
			for i := range ordinals {
				ordinals[i] = strconv.Itoa(i + 1)
			}
			list := strings.Join(ordinals, ", ")
			sql += " GROUP BY " + list + " ORDER BY " + list
		}
		if !amounts {
			sql += " LIMIT " + w.param(q.Limit+1)
		}
		return sql, w, keys, nil
	}
	sql, w, keys, err := build(false)
	if err != nil {
		return nil, err
	}

	scan := func(row pgx.CollectableRow) (UsageRow, error) {
		var r UsageRow
		dest := make([]any, 0, len(keys)+4)
		if unit != "" {
			dest = append(dest, &r.Window)
		}
		for _, g := range q.GroupBy {
			switch g {
			case GroupService:
				dest = append(dest, &r.Service)
			case GroupApplication:
				dest = append(dest, &r.Application)
			case GroupSupplier:
				dest = append(dest, &r.Supplier)
			case GroupProtocol:
				dest = append(dest, &r.Protocol)
			case GroupMethod:
				dest = append(dest, &r.Method)
			}
		}
		dest = append(dest, &r.Messages, &r.Relays, &r.Units, &r.Bytes)
		err := row.Scan(dest...)
		if unit != "" {
			r.Window = r.Window.UTC()
		}
		return r, err
	}
	var out []UsageRow
	run := func(db interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	}) error {
		rows, err := db.Query(ctx, sql, w.args...)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectRows(rows, scan); err != nil || len(out) > q.Limit {
			return err
		}
		return s.addAmounts(ctx, db, out, q, build)
	}
	if byMethod {
		limit := q.methodLimit()
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT set_config('statement_timeout', $1, true)", strconv.FormatInt(limit.Milliseconds(), 10)); err != nil {
				return err
			}
			return run(tx)
		})
	} else {
		err = run(s.pool)
	}
	var pg *pgconn.PgError
	switch {
	case errors.As(err, &pg) && pg.Code == "22023" && strings.Contains(pg.Message, "time zone"):
		return nil, &InvalidInputError{Field: "timeZone", Reason: "time zone not known to the database: " + strconv.Quote(q.TimeZone)}
	case errors.As(err, &pg) && pg.Code == "57014" && ctx.Err() == nil:
		return nil, &InvalidInputError{Field: "filter", Reason: fmt.Sprintf("grouping by METHOD took longer than %s; narrow the range or the filter", q.methodLimit())}
	case err != nil:
		return nil, fmt.Errorf("ledger: usage series: %w", err)
	}
	if len(out) > q.Limit {
		return nil, &TooManyRowsError{Limit: q.Limit}
	}
	if out == nil {
		out = []UsageRow{}
	}
	return out, nil
}

// addAmounts prices rows: the query build(true) makes sums, per row's
// window and groups and per currency, each minute's units times the tariff
// in force then.
func (s *Store) addAmounts(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, rows []UsageRow, q UsageSeriesQuery, build func(bool) (string, sqlWhere, []string, error)) error {
	sql, w, _, err := build(true)
	if err != nil {
		return err
	}
	at := make(map[rowID]int, len(rows))
	for i, r := range rows {
		at[rowKey(r)] = i
	}
	res, err := db.Query(ctx, sql, w.args...)
	if err != nil {
		return err
	}
	defer res.Close()
	for res.Next() {
		var r UsageRow
		var a Amount
		dest := make([]any, 0, len(q.GroupBy)+3)
		if q.Window != WindowNone {
			dest = append(dest, &r.Window)
		}
		for _, g := range q.GroupBy {
			dest = append(dest, r.field(g))
		}
		if err := res.Scan(append(dest, &a.Currency, &a.Value)...); err != nil {
			return err
		}
		r.Window = r.Window.UTC()
		if i, ok := at[rowKey(r)]; ok {
			rows[i].Amounts = append(rows[i].Amounts, a)
		}
	}
	return res.Err()
}

// rowID is a row's window and group values: what identifies it.
type rowID struct {
	window                                           int64
	service, application, supplier, protocol, method string
}

func rowKey(r UsageRow) rowID {
	return rowID{r.Window.UnixNano(), r.Service, r.Application, r.Supplier, r.Protocol, r.Method}
}

// field is where a row keeps the value of group g.
func (r *UsageRow) field(g UsageGroup) *string {
	switch g {
	case GroupService:
		return &r.Service
	case GroupApplication:
		return &r.Application
	case GroupSupplier:
		return &r.Supplier
	case GroupProtocol:
		return &r.Protocol
	}
	return &r.Method
}

// methodLimit is MethodQueryLimit with its default.
func (q UsageSeriesQuery) methodLimit() time.Duration {
	if q.MethodQueryLimit <= 0 {
		return DefaultMethodQueryLimit
	}
	return q.MethodQueryLimit
}
