package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Finding kinds the ledger records itself, under the settlement lock.
const (
	// FindingLateRelay: a message whose relays belong to a window settled
	// before the message was metered; the next settlement adjusts it, and
	// resolves the finding.
	FindingLateRelay = "late_relay"
	// FindingUncrossedAfterSettlement: a message a close says never
	// crossed the edge, whose window was settled with it; the next
	// settlement takes it back, and resolves the finding.
	FindingUncrossedAfterSettlement = "uncrossed_after_settlement"
)

// recordLateRelays records a late_relay finding for each message of the
// batch with relays whose RelayAt is before settledUntil (zero: nothing
// settled).
func recordLateRelays(ctx context.Context, tx pgx.Tx, msgs []Message, settledUntil time.Time) error {
	if settledUntil.IsZero() {
		return nil
	}
	var ids []uuid.UUID
	var seqs, units []int64
	var at, observed []time.Time
	for i := range msgs {
		m := &msgs[i]
		if m.Units > 0 && m.RelayAt.Before(settledUntil) {
			ids, seqs, units = append(ids, m.StreamID), append(seqs, m.Seq), append(units, m.Units)
			at, observed = append(at, m.RelayAt), append(observed, m.ObservedAt)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO findings (kind, stream_id, seq, detail, observed_at)
		SELECT $1, l.id, l.seq, format('%s relays at %s, in the window from height %s (%s), settled before they were metered; adjusted in the next settlement',
				l.units, l.at, coalesce(w.start_height::text, '(before the first window)'), w.starts_at), l.observed
		FROM unnest($2::uuid[], $3::bigint[], $4::timestamptz[], $5::bigint[], $6::timestamptz[]) AS l(id, seq, at, units, observed)
		LEFT JOIN LATERAL (SELECT c.start_height, c.starts_at FROM chain_sessions c WHERE c.starts_at <= l.at
			ORDER BY c.starts_at DESC LIMIT 1) w ON true`,
		FindingLateRelay, ids, seqs, at, units, observed)
	if err != nil {
		return fmt.Errorf("ledger: record late relays: %w", err)
	}
	return nil
}

// recordUncrossedAfterSettlement records an uncrossed_after_settlement
// finding for each message of the closed streams that the close says never
// crossed, whose window was settled with it: those not waiting as late
// relays (their adjustment sees that they did not cross) and not taken back
// already.
func recordUncrossedAfterSettlement(ctx context.Context, tx pgx.Tx, closed []*StreamChange, settledUntil time.Time) error {
	if len(closed) == 0 || settledUntil.IsZero() {
		return nil
	}
	ids, up, down := make([]uuid.UUID, len(closed)), make([]*int64, len(closed)), make([]*int64, len(closed))
	for i, c := range closed {
		ids[i], up[i], down[i] = c.StreamID, ptr(c.ForwardedToUpstreamSeq), ptr(c.ForwardedToClientSeq)
	}
	_, err := tx.Exec(ctx, `INSERT INTO findings (kind, stream_id, seq, detail, observed_at)
		SELECT $1, m.stream_id, m.seq, format('%s relays settled at %s never crossed the edge (the close says so); taken back in the next settlement',
				m.units, `+relayAtSQL+`), m.observed_at
		FROM unnest($2::uuid[], $3::bigint[], $4::bigint[]) AS c(stream_id, up, down)
		JOIN messages m ON m.stream_id = c.stream_id
			AND m.seq > least(coalesce(c.up, 9223372036854775807), coalesce(c.down, 9223372036854775807))
		WHERE CASE WHEN m.direction = 2 THEN m.seq > c.down ELSE m.seq > c.up END
			AND m.units > 0 AND `+relayAtSQL+` < $5
			AND NOT EXISTS (SELECT 1 FROM findings f WHERE f.stream_id = m.stream_id AND f.seq = m.seq
				AND (f.kind = $1 OR f.kind = $6 AND f.resolved_at IS NULL))`,
		FindingUncrossedAfterSettlement, ids, up, down, settledUntil, FindingLateRelay)
	if err != nil {
		return fmt.Errorf("ledger: record messages taken back after settlement: %w", err)
	}
	return nil
}
