package audit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relaymeter/relaymeter/ledger"
)

// settlementTables are the tables a settlement writes, copied into the
// scratch so the ledger's own settlement can run there.
var settlementTables = []string{"sessions", "accounts", "ledger_transactions", "ledger_entries"}

// settle settles, in the scratch, every window the ledger has settled, in
// order, with the ledger's own SettleNext over the replayed messages and
// streams: the chain's windows (chain_sessions), tariffs and fees are the
// ledger's. Each window is posted at the time the ledger posted it, so
// that an intact ledger's transactions, hash chain included, recompute
// exactly. The replay meters every event before any window settles, so no
// relay is late in it: the ledger's late relays and take-backs are held
// out and released before the window whose settlement adjusted them in
// the ledger (holdLate, releaseLate), so that they are adjusted there
// again, recomputed.
func (s *scratch) settle(ctx context.Context, group, topic string, partitions int) (int, error) {
	var through int64
	if err := s.pool.QueryRow(ctx, `SELECT settled_through_height FROM `+s.ledgerTable("settlement_state")).Scan(&through); err != nil {
		return 0, fmt.Errorf("audit: settle: the ledger's settlement state: %w", err)
	}
	// Every partition metered to the end: the clocks let any window settle.
	if _, err := s.pool.Exec(ctx, `INSERT INTO pg_temp.consumer_offsets (group_id, topic, kafka_partition, next_offset, clock)
			SELECT $1, $2, p, 0, 'infinity' FROM generate_series(0, $3 - 1) p
		ON CONFLICT (group_id, topic, kafka_partition) DO UPDATE SET clock = 'infinity'`, group, topic, partitions); err != nil {
		return 0, fmt.Errorf("audit: settle: %w", err)
	}
	if err := s.holdLate(ctx); err != nil {
		return 0, err
	}
	windows := 0
	for {
		var next int64
		err := s.pool.QueryRow(ctx, `SELECT start_height FROM `+s.ledgerTable("chain_sessions")+`
			WHERE start_height > (SELECT settled_through_height FROM pg_temp.settlement_state)
			ORDER BY start_height LIMIT 1`).Scan(&next)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && next > through {
			return windows, s.releaseLate(ctx, 0, true)
		}
		if err != nil {
			return windows, fmt.Errorf("audit: settle: next window: %w", err)
		}
		if err := s.releaseLate(ctx, next, false); err != nil {
			return windows, err
		}
		at, err := s.postedAt(ctx, next)
		if err != nil {
			return windows, err
		}
		_, done, err := s.store.SettleNext(ctx, ledger.SettleParams{Group: group, Topic: topic, Partitions: partitions,
			Head: math.MaxInt64 / 2, Now: at})
		if err != nil {
			return windows, fmt.Errorf("audit: settle window %d: %w", next, err)
		}
		if !done {
			return windows, fmt.Errorf("audit: settle: window %d, settled in the ledger, does not settle in the replay (its end is not known)", next)
		}
		windows++
	}
}

// postedAt is when the ledger settled the window starting at height h: its
// sessions' settled_at, which is its transactions' posted_at; now for a
// window without sessions (nothing of it records the time).
func (s *scratch) postedAt(ctx context.Context, h int64) (time.Time, error) {
	var at *time.Time
	err := s.pool.QueryRow(ctx, `SELECT min(settled_at) FROM `+s.ledgerTable("sessions")+` WHERE start_height = $1`, h).Scan(&at)
	if err != nil {
		return time.Time{}, fmt.Errorf("audit: settle: when window %d settled: %w", h, err)
	}
	if at == nil {
		return time.Now(), nil
	}
	return *at, nil
}
