package ledger

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditFinding is an audit_findings row: a row of a derived table that
// relaymeter audit's replay of the events log (expected) and the ledger
// (found) disagree on.
type AuditFinding struct {
	ID    int64
	RunID int64
	// Kind is missing (only the replay has the row), extra (only the
	// ledger has it) or differs.
	Kind  string
	Table string
	// Keys is the row's primary key, Expected the replay's row and Found
	// the ledger's, as JSON objects; Expected is nil when extra, Found nil
	// when missing.
	Keys, Expected, Found json.RawMessage
	RecordedAt            time.Time
}

// AuditFindingFilter selects audit findings; zero fields match everything.
type AuditFindingFilter struct {
	RunID       int64
	Kind, Table string
}

const auditFindingCursor = "audit-finding"

// Cursor returns the finding's cursor in ListAuditFindings.
func (r AuditFinding) Cursor() string {
	return encodeCursor(auditFindingCursor, strconv.FormatInt(r.ID, 10))
}

// ListAuditFindings returns up to first audit findings that f selects, in
// the order they were recorded (runs, then each run's tables in primary
// key order), starting after the one whose cursor is after ("" for the
// first page). Audit findings belong to no tenant: callers show them to
// admins only.
func (s *Store) ListAuditFindings(ctx context.Context, f AuditFindingFilter, first int, after string) (Page[AuditFinding], error) {
	if err := checkPageSize(first); err != nil {
		return Page[AuditFinding]{}, err
	}
	afterID, err := decodeIDCursor(auditFindingCursor, after)
	if err != nil {
		return Page[AuditFinding]{}, err
	}
	var w sqlWhere
	if afterID > 0 {
		w.add("id > ?", afterID)
	}
	if f.RunID != 0 {
		w.add("run_id = ?", f.RunID)
	}
	w.eq("kind", f.Kind)
	w.eq("table_name", f.Table)
	q := `SELECT id, run_id, kind, table_name, keys::text, expected::text, found::text, recorded_at FROM audit_findings` +
		w.sql() + " ORDER BY id LIMIT " + w.param(first+1)
	return listPage(ctx, s, "audit findings", q, w.args, first, func(row pgx.CollectableRow) (AuditFinding, error) {
		var r AuditFinding
		var keys string
		var exp, found *string
		err := row.Scan(&r.ID, &r.RunID, &r.Kind, &r.Table, &keys, &exp, &found, &r.RecordedAt)
		r.Keys = json.RawMessage(keys)
		if exp != nil {
			r.Expected = json.RawMessage(*exp)
		}
		if found != nil {
			r.Found = json.RawMessage(*found)
		}
		return r, err
	})
}
