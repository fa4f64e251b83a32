package ledger

import (
	"context"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// FindingFilter selects findings. An empty kind and a nil stream id match
// everything.
type FindingFilter struct {
	Kind     string
	StreamID *uuid.UUID
}

// FindingRow is something the meter noticed and did not paper over: a gap
// in seq, a broken chain, counts at close that differ from what was
// metered, an event for an unknown stream or service, an undecodable
// record.
type FindingRow struct {
	ID         int64
	Kind       string
	StreamID   *uuid.UUID
	Seq        *int64
	Topic      *string
	Partition  *int32
	Offset     *int64
	Detail     string
	ObservedAt *time.Time
	RecordedAt time.Time
}

const findingCursor = "finding"

// Cursor returns the finding's cursor in ListFindings.
func (r FindingRow) Cursor() string {
	return encodeCursor(findingCursor, strconv.FormatInt(r.ID, 10))
}

// ListFindings returns up to first findings that f selects, in the order they
// were recorded, starting after the finding whose cursor is after ("" for
// the first page).
func (s *Store) ListFindings(ctx context.Context, f FindingFilter, first int, after string) (Page[FindingRow], error) {
	if err := checkPageSize(first); err != nil {
		return Page[FindingRow]{}, err
	}
	afterID, err := decodeIDCursor(findingCursor, after)
	if err != nil {
		return Page[FindingRow]{}, err
	}
	var w sqlWhere
	if afterID > 0 {
		w.add("id > ?", afterID)
	}
	w.eq("kind", f.Kind)
	if f.StreamID != nil {
		w.add("stream_id = ?", *f.StreamID)
	}
	q := `SELECT id, kind, stream_id, seq, topic, kafka_partition, kafka_offset, detail, observed_at, recorded_at
		FROM findings` + w.sql() + " ORDER BY id LIMIT " + w.param(first+1)
	return listPage(ctx, s, "findings", q, w.args, first, func(row pgx.CollectableRow) (FindingRow, error) {
		var r FindingRow
		err := row.Scan(&r.ID, &r.Kind, &r.StreamID, &r.Seq, &r.Topic, &r.Partition, &r.Offset, &r.Detail,
			&r.ObservedAt, &r.RecordedAt)
		return r, err
	})
}
