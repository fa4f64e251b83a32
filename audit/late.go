package audit

import (
	"context"
	"fmt"

	"github.com/relaymeter/relaymeter/ledger"
)

// The replay meters every event before any window settles, so no relay is
// late in it. When the ledger settled a late relay (or took back a message
// a later close said never crossed), it did so in the adjustment of the
// settlement after the commit: a time the log does not record. The scratch
// takes that time from the ledger (which window's settlement resolved
// each of its late_relay and uncrossed_after_settlement findings), never
// the amounts, and reproduces it:
//
//   - a late relay's message is held out of every window's totals (its
//     units set to 0, kept in held_units) until the window that adjusted
//     it, and then put back with an unresolved late_relay finding, which
//     that window's SettleNext adjusts;
//   - a take-back's stream is settled as the ledger saw it before its
//     close (forwarded seqs NULL, kept in held_streams) until the window
//     that took the message back, and then restored with an unresolved
//     uncrossed_after_settlement finding;
//   - findings not resolved in the ledger are released after the last
//     window, unresolved.
//
// A finding whose message the replay does not have is not held: the
// comparison of the findings table reports it as extra.

// holdLate reads the ledger's late relays and take-backs into held_late
// (with the start height of the window that adjusted each, NULL for none
// yet) and holds their messages and streams out of the settlement.
func (s *scratch) holdLate(ctx context.Context) error {
	late, unc := ledger.FindingLateRelay, ledger.FindingUncrossedAfterSettlement
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_temp.findings WHERE kind IN ($1, $2)`, late, unc).Scan(&n); err != nil {
		return fmt.Errorf("audit: late relays: %w", err)
	}
	if n > 0 { // the replay commits everything before anything settles
		return fmt.Errorf("audit: late relays: the replay recorded %d late relays or take-backs itself", n)
	}
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`CREATE TEMP TABLE held_late AS
		SELECT f.id, f.kind, f.stream_id, f.seq, f.detail, f.observed_at, coalesce(ts.start_height, rs.start_height) AS height
		FROM ` + s.ledgerTable("findings") + ` f
		LEFT JOIN ` + s.ledgerTable("ledger_transactions") + ` t ON t.id = f.transaction_id
		LEFT JOIN ` + s.ledgerTable("sessions") + ` ts ON ts.id = t.session
		LEFT JOIN LATERAL (SELECT min(x.start_height) AS start_height FROM ` + s.ledgerTable("sessions") + ` x
			JOIN ` + s.ledgerTable("streams") + ` st ON st.stream_id = f.stream_id
			WHERE f.resolved_at IS NOT NULL AND x.settled_at = f.resolved_at
				AND x.application = st.application AND x.service = st.service AND x.supplier = st.supplier) rs ON true
		WHERE f.kind IN ($1, $2)
			AND EXISTS (SELECT 1 FROM pg_temp.messages m WHERE m.stream_id = f.stream_id AND m.seq = f.seq)`, []any{late, unc}},
		{`CREATE TEMP TABLE held_units AS
		SELECT m.stream_id, m.seq, m.units, h.height FROM pg_temp.messages m
		JOIN pg_temp.held_late h ON h.stream_id = m.stream_id AND h.seq = m.seq AND h.kind = $1`, []any{late}},
		{`UPDATE pg_temp.messages m SET units = 0 FROM pg_temp.held_units h WHERE h.stream_id = m.stream_id AND h.seq = m.seq`, nil},
		{`CREATE TEMP TABLE held_streams AS
		SELECT s.stream_id, s.forwarded_to_upstream_seq AS up, s.forwarded_to_client_seq AS down, min(h.height) AS height
		FROM pg_temp.streams s JOIN pg_temp.held_late h ON h.stream_id = s.stream_id AND h.kind = $1
		GROUP BY s.stream_id`, []any{unc}},
		{`UPDATE pg_temp.streams s SET forwarded_to_upstream_seq = NULL, forwarded_to_client_seq = NULL
		FROM pg_temp.held_streams h WHERE h.stream_id = s.stream_id`, nil},
	} {
		if _, err := s.pool.Exec(ctx, st.q, st.args...); err != nil {
			return fmt.Errorf("audit: hold late relays: %w", err)
		}
	}
	return nil
}

// releaseLate puts back what holdLate held for the window starting at
// height h (or, when all, everything still held) and records each
// finding, unresolved, in the scratch: the next SettleNext adjusts it.
func (s *scratch) releaseLate(ctx context.Context, h int64, all bool) error {
	for _, q := range []string{
		`WITH r AS (DELETE FROM pg_temp.held_units WHERE $2 OR height <= $1 RETURNING *)
		UPDATE pg_temp.messages m SET units = r.units FROM r WHERE r.stream_id = m.stream_id AND r.seq = m.seq`,
		`WITH r AS (DELETE FROM pg_temp.held_streams WHERE $2 OR height <= $1 RETURNING *)
		UPDATE pg_temp.streams s SET forwarded_to_upstream_seq = r.up, forwarded_to_client_seq = r.down
		FROM r WHERE r.stream_id = s.stream_id`,
		`WITH r AS (DELETE FROM pg_temp.held_late WHERE $2 OR height <= $1 RETURNING *)
		INSERT INTO pg_temp.findings (kind, stream_id, seq, detail, observed_at)
		SELECT kind, stream_id, seq, detail, observed_at FROM r ORDER BY id`,
	} {
		if _, err := s.pool.Exec(ctx, q, h, all); err != nil {
			return fmt.Errorf("audit: release late relays of window %d: %w", h, err)
		}
	}
	return nil
}
