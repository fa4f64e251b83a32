package ledger

import (
	"context"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// FindingFilter selects findings. An empty kind, a nil stream id and a nil
// Open match everything.
type FindingFilter struct {
	// Scope is whose findings may be returned, whatever the rest
	// selects: a restricted scope sees only findings of streams it may
	// see, never a finding without a stream.
	Scope    Scope
	Kind     string
	StreamID *uuid.UUID
	// Open, if set, selects findings not resolved (true) or resolved
	// (false).
	Open *bool
}

const findingCursor = "finding"

// Cursor returns the finding's cursor in ListFindings.
func (r Finding) Cursor() string {
	return encodeCursor(findingCursor, strconv.FormatInt(r.ID, 10))
}

// ListFindings returns up to first findings that f selects, in the order they
// were recorded, starting after the finding whose cursor is after ("" for
// the first page).
func (s *Store) ListFindings(ctx context.Context, f FindingFilter, first int, after string) (Page[Finding], error) {
	if err := checkPageSize(first); err != nil {
		return Page[Finding]{}, err
	}
	afterID, err := decodeIDCursor(findingCursor, after)
	if err != nil {
		return Page[Finding]{}, err
	}
	var w sqlWhere
	if !f.Scope.Unrestricted() {
		w.add("stream_id IS NOT NULL")
		w.add(streamVisible(&w, f.Scope, "findings.stream_id"))
	}
	if afterID > 0 {
		w.add("id > ?", afterID)
	}
	w.eq("kind", f.Kind)
	if f.StreamID != nil {
		w.add("stream_id = ?", *f.StreamID)
	}
	if f.Open != nil {
		if *f.Open {
			w.add("resolved_at IS NULL")
		} else {
			w.add("resolved_at IS NOT NULL")
		}
	}
	q := `SELECT id, kind, stream_id, seq, topic, kafka_partition, kafka_offset, detail, observed_at, recorded_at,
		resolved_at FROM findings` + w.sql() + " ORDER BY id LIMIT " + w.param(first+1)
	return listPage(ctx, s, "findings", q, w.args, first, func(row pgx.CollectableRow) (Finding, error) {
		var r Finding
		err := row.Scan(&r.ID, &r.Kind, &r.StreamID, &r.Seq, &r.Topic, &r.Partition, &r.Offset, &r.Detail,
			&r.ObservedAt, &r.RecordedAt, &r.ResolvedAt)
		return r, err
	})
}
