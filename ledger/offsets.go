package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
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
// yet) to next with a compare-and-set; it returns ErrFenced when the stored
// offset is not expected. Run first in a batch's transaction, it takes the
// row lock so a concurrent zombie waits, then fails.
func moveOffset(ctx context.Context, tx pgx.Tx, group, topic string, partition int32, expected, next int64) error {
	var tag interface{ RowsAffected() int64 }
	var err error
	if expected == NoOffset {
		tag, err = tx.Exec(ctx, `INSERT INTO consumer_offsets (group_id, topic, kafka_partition, next_offset)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, group, topic, partition, next)
	} else {
		tag, err = tx.Exec(ctx, `UPDATE consumer_offsets SET next_offset = $5, updated_at = now()
			WHERE group_id = $1 AND topic = $2 AND kafka_partition = $3 AND next_offset = $4`,
			group, topic, partition, expected, next)
	}
	if err != nil {
		return fmt.Errorf("ledger: move offset %s/%s/%d: %w", group, topic, partition, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%w: %s/%s/%d expected %d", ErrFenced, group, topic, partition, expected)
	}
	return nil
}
