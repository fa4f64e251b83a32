package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Balance returns the balance of account (an AccountID) as the exact sum of
// its entries, credits positive: as of now, or, when at is Valid, of the
// transactions posted at or before at. An account without entries has
// balance "0".
func (s *Store) Balance(ctx context.Context, account string, at sql.Null[time.Time]) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT coalesce(trim_scale(sum(e.amount)), 0)::text FROM ledger_entries e
		JOIN ledger_transactions t ON t.seq = e.transaction_seq
		WHERE e.account = $1 AND ($2::timestamptz IS NULL OR t.posted_at <= $2)`, account, at).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("ledger: balance of %s: %w", account, err)
	}
	return CanonicalDecimal(v)
}
