package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const chainSessionColumns = `start_height, end_height, starts_at, ends_at, start_hash`

func scanChainSession(row pgx.Row) (ChainSession, error) {
	var c ChainSession
	err := row.Scan(&c.StartHeight, &c.EndHeight, &c.StartsAt, &c.EndsAt, &c.StartHash)
	return c, err
}

// LastChainSession returns the latest window stored, and false when none
// is.
func (s *Store) LastChainSession(ctx context.Context) (ChainSession, bool, error) {
	c, err := scanChainSession(s.pool.QueryRow(ctx, `SELECT `+chainSessionColumns+` FROM chain_sessions
		ORDER BY start_height DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return ChainSession{}, false, nil
	}
	if err != nil {
		return ChainSession{}, false, fmt.Errorf("ledger: last chain session: %w", err)
	}
	return c, true, nil
}

// ChainSessions returns the windows stored from height from on, oldest
// first, at most limit.
func (s *Store) ChainSessions(ctx context.Context, from int64, limit int) ([]ChainSession, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+chainSessionColumns+` FROM chain_sessions WHERE start_height >= $1
		ORDER BY start_height LIMIT $2`, from, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: chain sessions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ChainSession, error) { return scanChainSession(row) })
	if err != nil {
		return nil, fmt.Errorf("ledger: chain sessions: %w", err)
	}
	return out, nil
}

// AddChainSession stores window c, unless it is stored already (then the
// stored row must be the same window: a chain that changed under stored
// windows is an error). Its end, when known, is set once.
func (s *Store) AddChainSession(ctx context.Context, c ChainSession) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO chain_sessions (`+chainSessionColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (start_height) DO NOTHING`, c.StartHeight, c.EndHeight, c.StartsAt, c.EndsAt, c.StartHash)
	if err != nil {
		return fmt.Errorf("ledger: add chain session %d: %w", c.StartHeight, err)
	}
	if c.EndsAt.Valid {
		return s.EndChainSession(ctx, c.StartHeight, c.EndsAt.V)
	}
	return nil
}

// EndChainSession sets the end of the window starting at start, once: a
// window ended already keeps its end.
func (s *Store) EndChainSession(ctx context.Context, start int64, endsAt time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE chain_sessions SET ends_at = $2 WHERE start_height = $1 AND ends_at IS NULL`,
		start, endsAt); err != nil {
		return fmt.Errorf("ledger: end chain session %d: %w", start, err)
	}
	return nil
}

// EarliestMessage returns the earliest observation time of the messages
// stored, and false when there are none: where settlement starts.
func (s *Store) EarliestMessage(ctx context.Context) (time.Time, bool, error) {
	var t *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT min(observed_at) FROM messages`).Scan(&t); err != nil {
		return time.Time{}, false, fmt.Errorf("ledger: earliest message: %w", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}

// ErrSettlementConfig reports a chain configuration other than the one the
// ledger's sessions were cut with.
var ErrSettlementConfig = errors.New("ledger: the chain configuration differs from the one stored at the first start (changing session windows under settled history is not supported)")

// EnsureSettlementConfig stores c at the first start, and afterwards
// checks that c is the stored configuration (the URL aside: another node
// of the same chain is fine); it returns ErrSettlementConfig, saying what
// differs, otherwise.
func (s *Store) EnsureSettlementConfig(ctx context.Context, c SettlementConfig) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO settlement_config (source, url, chain_id, genesis, block_time, session_blocks, grace_blocks)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		c.Source, c.URL, c.ChainID, c.Genesis, c.BlockTime, c.SessionBlocks, c.GraceBlocks); err != nil {
		return fmt.Errorf("ledger: settlement config: %w", err)
	}
	var st SettlementConfig
	if err := s.pool.QueryRow(ctx, `SELECT source, url, chain_id, genesis, block_time, session_blocks, grace_blocks
		FROM settlement_config`).Scan(&st.Source, &st.URL, &st.ChainID, &st.Genesis, &st.BlockTime, &st.SessionBlocks, &st.GraceBlocks); err != nil {
		return fmt.Errorf("ledger: settlement config: %w", err)
	}
	var diff []string
	if st.Source != c.Source {
		diff = append(diff, fmt.Sprintf("source %s, stored %s", c.Source, st.Source))
	}
	if st.ChainID != c.ChainID {
		diff = append(diff, fmt.Sprintf("chain %q, stored %q", c.ChainID, st.ChainID))
	}
	if st.Genesis.Valid != c.Genesis.Valid || st.Genesis.Valid && !st.Genesis.V.Equal(c.Genesis.V) {
		diff = append(diff, fmt.Sprintf("genesis %v, stored %v", c.Genesis.V, st.Genesis.V))
	}
	if c.Source == "clock" && st.BlockTime != c.BlockTime {
		diff = append(diff, fmt.Sprintf("block time %v, stored %v", c.BlockTime, st.BlockTime))
	}
	if st.SessionBlocks != c.SessionBlocks {
		diff = append(diff, fmt.Sprintf("blocks per session %d, stored %d", c.SessionBlocks, st.SessionBlocks))
	}
	if st.GraceBlocks != c.GraceBlocks {
		diff = append(diff, fmt.Sprintf("grace blocks %d, stored %d", c.GraceBlocks, st.GraceBlocks))
	}
	if len(diff) > 0 {
		return fmt.Errorf("%w: %v", ErrSettlementConfig, diff)
	}
	return nil
}
