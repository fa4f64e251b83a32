package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// EnsureServiceFee makes bps (basis points, 0 to 10000) the take rate of
// service's settlements: the first rate is in force since ever, a change
// from now on; the same rate again stores nothing. service_fees is
// append-only, so a settlement is always priced with the rate in force at
// its window's start.
func (s *Store) EnsureServiceFee(ctx context.Context, service string, bps int64) error {
	if bps < 0 || bps > 10000 {
		return &InvalidInputError{Field: "fee_bps", Reason: "0 to 10000 basis points"}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM services WHERE id = $1 FOR UPDATE`, service); err != nil {
			return err
		}
		var latest int64
		err := tx.QueryRow(ctx, `SELECT fee_bps FROM service_fees WHERE service = $1 ORDER BY effective_from DESC LIMIT 1`, service).Scan(&latest)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if bps == 0 {
				return nil // no rate is 0
			}
			_, err = tx.Exec(ctx, `INSERT INTO service_fees (service, fee_bps, effective_from) VALUES ($1, $2, '-infinity')`, service, bps)
			return err
		case err != nil:
			return err
		case latest == bps:
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO service_fees (service, fee_bps, effective_from) VALUES ($1, $2, now())`, service, bps)
		return err
	})
	if err != nil {
		return fmt.Errorf("ledger: fee of %s: %w", service, err)
	}
	return nil
}
