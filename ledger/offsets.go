package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// ErrFenced reports that a partition's stored offset was not the one a
// consumer started from: another consumer (after a rebalance) moved it, so
// this one no longer owns the partition and must not commit.
var ErrFenced = errors.New("ledger: consumer offset moved by another consumer")

// NoOffset is the expected offset of a partition that has no stored offset.
const NoOffset int64 = -1

// NextOffset returns the stored next offset of a consumer group's partition,
// or NoOffset when none is stored.
func (s *Store) NextOffset(ctx context.Context, group, topic string, partition int32) (int64, error) {
	var next int64
	err := s.pool.QueryRow(ctx,
		`SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND kafka_partition = $3`,
		group, topic, partition).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return NoOffset, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ledger: read offset %s/%s/%d: %w", group, topic, partition, err)
	}
	return next, nil
}

// moveOffset moves a partition's next offset from expected (NoOffset: no row
// yet) to next with a compare-and-set, and sets its clock (zero: kept); it
// returns ErrFenced when the stored offset is not expected. Run first in a
// batch's transaction, it takes the row lock so a concurrent zombie waits,
// then fails. In the same statement it takes the settlement lock shared and
// returns the end of the settled windows: until the batch commits no window
// settles, and once one has, the batch sees it.
func moveOffset(ctx context.Context, tx pgx.Tx, group, topic string, partition int32, expected, next int64, clock time.Time) (settledUntil time.Time, err error) {
	var clk *time.Time
	if !clock.IsZero() {
		clk = &clock
	}
	var moved int64
	var until pgtype.Timestamptz
	if expected == NoOffset {
		err = tx.QueryRow(ctx, `WITH st AS (SELECT settled_until FROM settlement_state FOR SHARE),
			mv AS (INSERT INTO consumer_offsets (group_id, topic, kafka_partition, next_offset, clock)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1)
			SELECT (SELECT count(*) FROM mv), (SELECT settled_until FROM st)`, group, topic, partition, next, clk).Scan(&moved, &until)
	} else {
		err = tx.QueryRow(ctx, `WITH st AS (SELECT settled_until FROM settlement_state FOR SHARE),
			mv AS (UPDATE consumer_offsets SET next_offset = $5, updated_at = now(), clock = coalesce($6, clock)
				WHERE group_id = $1 AND topic = $2 AND kafka_partition = $3 AND next_offset = $4 RETURNING 1)
			SELECT (SELECT count(*) FROM mv), (SELECT settled_until FROM st)`,
			group, topic, partition, expected, next, clk).Scan(&moved, &until)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("ledger: move offset %s/%s/%d: %w", group, topic, partition, err)
	}
	if moved != 1 {
		return time.Time{}, fmt.Errorf("%w: %s/%s/%d expected %d", ErrFenced, group, topic, partition, expected)
	}
	return untilTime(until), nil
}

// untilTime returns a settled_until as a time: zero for -infinity
// (nothing settled).
func untilTime(v pgtype.Timestamptz) time.Time {
	if !v.Valid || v.InfinityModifier != pgtype.Finite {
		return time.Time{}
	}
	return v.Time
}

// TickClock stores a partition's clock without moving its offset (an idle
// partition's clock is the wall clock): a compare-and-set on the stored
// offset, which must be at (ErrFenced otherwise). A partition with no
// stored offset (at NoOffset) gets one at start, where it will read from.
func (s *Store) TickClock(ctx context.Context, group, topic string, partition int32, at, start int64, clock time.Time) error {
	var tag pgconn.CommandTag
	var err error
	if at == NoOffset {
		tag, err = s.pool.Exec(ctx, `INSERT INTO consumer_offsets (group_id, topic, kafka_partition, next_offset, clock)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, group, topic, partition, start, clock)
	} else {
		tag, err = s.pool.Exec(ctx, `UPDATE consumer_offsets SET clock = $5
			WHERE group_id = $1 AND topic = $2 AND kafka_partition = $3 AND next_offset = $4`,
			group, topic, partition, at, clock)
	}
	if err != nil {
		return fmt.Errorf("ledger: tick clock %s/%s/%d: %w", group, topic, partition, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%w: %s/%s/%d expected %d", ErrFenced, group, topic, partition, at)
	}
	return nil
}
