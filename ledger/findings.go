package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Finding is a findings row: something the meter noticed and did not paper
// over. Kinds are the meter's; the ledger stores them.
type Finding struct {
	ID         int64 // set by Postgres
	Kind       string
	StreamID   sql.Null[uuid.UUID]
	Seq        sql.Null[int64]
	Topic      sql.Null[string]
	Partition  sql.Null[int32]
	Offset     sql.Null[int64]
	Detail     string
	ObservedAt sql.Null[time.Time]
	RecordedAt time.Time // set by Postgres
	// ResolvedAt is when a later event made the finding moot (a late event
	// filled a gap).
	ResolvedAt sql.Null[time.Time]
}

// Resolution names the finding a batch resolves: the open finding of Kind
// at (StreamID, Seq).
type Resolution struct {
	Kind     string
	StreamID uuid.UUID
	Seq      int64
}

var findingColumns = []string{"kind", "stream_id", "seq", "topic", "kafka_partition", "kafka_offset", "detail", "observed_at"}

func copyFindings(ctx context.Context, tx pgx.Tx, rows []Finding) error {
	if len(rows) == 0 {
		return nil
	}
	err := copyIn(ctx, tx, "findings", findingColumns, func(e *copyEncoder) {
		for i := range rows {
			f := &rows[i]
			e.row(len(findingColumns))
			e.text(f.Kind)
			e.nullUUID(f.StreamID)
			e.nullInt8(f.Seq)
			e.nullText(f.Topic)
			e.nullInt4(f.Partition)
			e.nullInt8(f.Offset)
			e.text(safeText(f.Detail))
			e.nullTimestamptz(f.ObservedAt)
		}
	})
	if err != nil {
		return fmt.Errorf("ledger: copy findings: %w", err)
	}
	return nil
}

// resolveFindings marks the named findings resolved, including ones the same
// batch records.
func resolveFindings(ctx context.Context, tx pgx.Tx, rs []Resolution) error {
	if len(rs) == 0 {
		return nil
	}
	kinds, ids, seqs := make([]string, len(rs)), make([]uuid.UUID, len(rs)), make([]int64, len(rs))
	for i, r := range rs {
		kinds[i], ids[i], seqs[i] = r.Kind, r.StreamID, r.Seq
	}
	_, err := tx.Exec(ctx, `UPDATE findings f SET resolved_at = now()
		FROM unnest($1::text[], $2::uuid[], $3::bigint[]) AS r(kind, stream_id, seq)
		WHERE f.stream_id = r.stream_id AND f.seq = r.seq AND f.kind = r.kind AND f.resolved_at IS NULL`,
		kinds, ids, seqs)
	if err != nil {
		return fmt.Errorf("ledger: resolve findings: %w", err)
	}
	return nil
}
