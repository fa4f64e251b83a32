package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Tariff is a tariffs row: the price of a service's units in one currency,
// for one application (a negotiated price) or as the service's default,
// from a minute on. Tariffs are append-only; a new price is a new row.
type Tariff struct {
	ID      int64
	Service string
	// Application is the application the price is negotiated for; "" for
	// the service's default.
	Application string
	// PricePerUnit is an exact decimal (numeric(38, 18)), as text.
	PricePerUnit string
	// Currency is a currency or token code (e.g. upokt, USD).
	Currency string
	// EffectiveFrom is the minute the price takes effect; not Valid for a
	// price in force since ever.
	EffectiveFrom sql.Null[time.Time]
	CreatedAt     time.Time
}

// Amount is a sum of money in one currency, an exact decimal as text.
type Amount struct {
	Currency string
	Value    string
}

// ErrTariffChange reports a tariff that would change what usage already
// metered costs: a price for a (service, application) that has one may
// only take effect from the next minute on.
var ErrTariffChange = errors.New("ledger: a new price takes effect from the next minute on, not in the past")

var currencyCode = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,16}$`)

// AddTariff stores t and returns it as stored. Without EffectiveFrom, the
// first price of a (service, application) is in force since ever and a
// later one from the next minute; an EffectiveFrom must be a whole minute,
// and, when the pair has a price already, not before the next minute
// (ErrTariffChange), so that no metered usage is priced again. A tariff
// equal to the pair's latest (same price and currency, no EffectiveFrom
// asked) is not stored again: the latest is returned.
func (s *Store) AddTariff(ctx context.Context, t Tariff) (Tariff, error) {
	switch {
	case !currencyCode.MatchString(t.Currency):
		return Tariff{}, &InvalidInputError{Field: "currency", Reason: "1 to 16 letters, digits, '_', '.' or '-'"}
	case t.EffectiveFrom.Valid && !t.EffectiveFrom.V.Equal(t.EffectiveFrom.V.Truncate(time.Minute)):
		return Tariff{}, &InvalidInputError{Field: "effectiveFrom", Reason: "a tariff takes effect at a whole minute"}
	}
	var out Tariff
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One writer per service at a time.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM services WHERE id = $1 FOR UPDATE`, t.Service); err != nil {
			return err
		}
		latest, err := scanTariff(tx.QueryRow(ctx, `SELECT `+tariffColumns+` FROM tariffs
			WHERE service = $1 AND application = $2 ORDER BY effective_from DESC LIMIT 1`, t.Service, t.Application))
		first := errors.Is(err, pgx.ErrNoRows)
		if err != nil && !first {
			return err
		}
		from := "'-infinity'::timestamptz"
		args := []any{t.Service, t.Application, t.PricePerUnit, t.Currency}
		switch {
		case t.EffectiveFrom.Valid:
			from = "$5"
			args = append(args, t.EffectiveFrom.V)
			if !first {
				var ok bool
				if err := tx.QueryRow(ctx, `SELECT $1 >= date_trunc('minute', now()) + interval '1 minute'`, t.EffectiveFrom.V).Scan(&ok); err != nil {
					return err
				}
				if !ok {
					return ErrTariffChange
				}
			}
		case !first:
			var same bool
			if err := tx.QueryRow(ctx, `SELECT $1::numeric = $2::numeric`, latest.PricePerUnit, t.PricePerUnit).Scan(&same); err != nil {
				return err
			}
			if same && latest.Currency == t.Currency {
				out = latest
				return nil
			}
			from = "date_trunc('minute', now()) + interval '1 minute'"
		}
		out, err = scanTariff(tx.QueryRow(ctx, `INSERT INTO tariffs (service, application, price_per_unit, currency, effective_from)
			VALUES ($1, $2, $3::numeric, $4, `+from+`) RETURNING `+tariffColumns, args...))
		return err
	})
	var pg *pgconn.PgError
	switch {
	case errors.As(err, &pg) && pg.Code == "23503":
		return Tariff{}, &InvalidInputError{Field: "service", Reason: "no such service"}
	case errors.As(err, &pg) && pg.Code == "23505":
		return Tariff{}, &InvalidInputError{Field: "effectiveFrom", Reason: "the service has a tariff from that minute already"}
	case errors.As(err, &pg) && strings.HasPrefix(pg.Code, "22"):
		return Tariff{}, &InvalidInputError{Field: "pricePerUnit", Reason: "not a decimal of at most 20 integer and 18 fractional digits, at least 0"}
	case errors.As(err, &pg) && pg.Code == "23514":
		return Tariff{}, &InvalidInputError{Field: "pricePerUnit", Reason: "must not be negative"}
	case errors.Is(err, ErrTariffChange):
		return Tariff{}, err
	case err != nil:
		return Tariff{}, fmt.Errorf("ledger: add tariff: %w", err)
	}
	return out, nil
}

// Tariffs returns the tariffs of service (every service for ""), by
// service, application and effective time.
func (s *Store) Tariffs(ctx context.Context, service string) ([]Tariff, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tariffColumns+` FROM tariffs WHERE $1 = '' OR service = $1
		ORDER BY service, application, effective_from`, service)
	if err != nil {
		return nil, fmt.Errorf("ledger: tariffs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Tariff, error) { return scanTariff(row) })
	if err != nil {
		return nil, fmt.Errorf("ledger: tariffs: %w", err)
	}
	return out, nil
}

const tariffColumns = `id, service, application, trim_scale(price_per_unit)::text, currency,
	CASE WHEN effective_from = '-infinity' THEN NULL ELSE effective_from END, created_at`

func scanTariff(row pgx.Row) (Tariff, error) {
	var t Tariff
	err := row.Scan(&t.ID, &t.Service, &t.Application, &t.PricePerUnit, &t.Currency, &t.EffectiveFrom, &t.CreatedAt)
	return t, err
}

// amountSQL prices the usage_minutes rows a query selects as u: the
// tariff in force at each row's minute, the application's own before the
// service's default.
const amountSQL = `CROSS JOIN LATERAL (SELECT t.price_per_unit, t.currency FROM tariffs t
		WHERE t.service = u.service AND t.application IN (u.application, '') AND t.effective_from <= u.minute
		ORDER BY t.application = '', t.effective_from DESC LIMIT 1) t`

// Amounts is what the usage f selects costs, per currency (units times the
// price in force at the minute they were metered); usage without a tariff
// costs nothing and is in no currency.
func (s *Store) Amounts(ctx context.Context, f UsageFilter) ([]Amount, error) {
	if err := checkTimeRange("filter", f.From, f.To); err != nil {
		return nil, err
	}
	var w sqlWhere
	f.where(&w)
	rows, err := s.pool.Query(ctx, `SELECT t.currency, trim_scale(sum(u.units * t.price_per_unit))::text
		FROM usage_minutes u `+amountSQL+w.sql()+` GROUP BY t.currency ORDER BY t.currency`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: amounts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Amount, error) {
		var a Amount
		err := row.Scan(&a.Currency, &a.Value)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: amounts: %w", err)
	}
	if out == nil {
		out = []Amount{}
	}
	return out, nil
}

// ErrTariffDiffers reports a tariff given again (the same service,
// application and start) with another price or currency: tariffs are
// never changed, a new price needs a new start.
var ErrTariffDiffers = errors.New("ledger: a tariff from that minute exists with another price or currency; tariffs are never changed, give the new price its own effective_from")

// EnsureTariff makes t, a declared tariff (without EffectiveFrom: in force
// since ever), exist: a tariff stored with the same service, application
// and start must equal it (else ErrTariffDiffers), and a new one is added
// by AddTariff's rules. Declaring a file's tariffs at every start is
// idempotent.
func (s *Store) EnsureTariff(ctx context.Context, t Tariff) (Tariff, error) {
	from := any("-infinity")
	if t.EffectiveFrom.Valid {
		from = t.EffectiveFrom.V
	}
	var same bool
	stored, err := scanTariff(s.pool.QueryRow(ctx, `SELECT `+tariffColumns+` FROM tariffs
		WHERE service = $1 AND application = $2 AND effective_from = $3::timestamptz`, t.Service, t.Application, from))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return Tariff{}, fmt.Errorf("ledger: ensure tariff: %w", err)
	default:
		if err := s.pool.QueryRow(ctx, `SELECT $1::numeric = $2::numeric`, stored.PricePerUnit, t.PricePerUnit).Scan(&same); err != nil {
			return Tariff{}, &InvalidInputError{Field: "pricePerUnit", Reason: "not a decimal"}
		}
		if !same || stored.Currency != t.Currency {
			return Tariff{}, ErrTariffDiffers
		}
		return stored, nil
	}
	if !t.EffectiveFrom.Valid {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM tariffs WHERE service = $1 AND application = $2`, t.Service, t.Application).Scan(&n); err != nil {
			return Tariff{}, fmt.Errorf("ledger: ensure tariff: %w", err)
		}
		if n > 0 {
			return Tariff{}, ErrTariffChange
		}
	}
	return s.AddTariff(ctx, t)
}
