package ledger

import (
	"context"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Pairing is where a relay stands in pairing a request with a response.
type Pairing string

// The pairings of a relay.
const (
	// PairingPaired means both its request and its response are known.
	PairingPaired Pairing = "PAIRED"
	// PairingPending means a counterpart has not arrived yet and its stream is open.
	PairingPending Pairing = "PENDING"
	// PairingUnpaired means its stream closed before a counterpart arrived.
	PairingUnpaired Pairing = "UNPAIRED"
)

// RelayFilter selects relays. Empty strings, zero times, a nil stream id
// and an empty pairing match everything.
type RelayFilter struct {
	Service, Application, Supplier, Protocol string
	StreamID                                 *uuid.UUID
	// From (inclusive) and To (exclusive) bound observed_at.
	From, To time.Time
	Pairing  Pairing
}

// RelayRow is one relay: a unit of work of uniform weight.
type RelayRow struct {
	ID            int64  // position in the relays list
	RelayID       []byte // sha256(stream id ‖ seq ‖ unit index)
	StreamID      uuid.UUID
	Seq           int64 // the message that yielded it
	UnitIndex     int32
	RequestSeq    *int64
	ResponseSeq   *int64
	Pairing       Pairing
	Protocol      string
	Service       string
	Application   string
	Supplier      string
	Weight        int64
	Policy        string
	PolicyVersion int32
	ObservedAt    time.Time
}

const relayCursor = "relay"

// Cursor returns the relay's cursor in ListRelays.
func (r RelayRow) Cursor() string { return encodeCursor(relayCursor, strconv.FormatInt(r.ID, 10)) }

// ListRelays returns up to first relays that f selects, in the order they
// were recorded, starting after the relay whose cursor is after ("" for
// the first page).
func (s *Store) ListRelays(ctx context.Context, f RelayFilter, first int, after string) (Page[RelayRow], error) {
	if err := checkPageSize(first); err != nil {
		return Page[RelayRow]{}, err
	}
	afterID, err := decodeIDCursor(relayCursor, after)
	if err != nil {
		return Page[RelayRow]{}, err
	}
	if err := checkTimeRange("filter.to", f.From, f.To); err != nil {
		return Page[RelayRow]{}, err
	}
	var w sqlWhere
	if afterID > 0 {
		w.add("id > ?", afterID)
	}
	w.eq("service", f.Service)
	w.eq("application", f.Application)
	w.eq("supplier", f.Supplier)
	w.eq("protocol", f.Protocol)
	if f.StreamID != nil {
		w.add("stream_id = ?", *f.StreamID)
	}
	if !f.From.IsZero() {
		w.add("observed_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		w.add("observed_at < ?", f.To)
	}
	switch f.Pairing {
	case "":
	case PairingPaired:
		w.add("NOT unpaired AND request_seq IS NOT NULL AND response_seq IS NOT NULL")
	case PairingPending:
		w.add("NOT unpaired AND (request_seq IS NULL OR response_seq IS NULL)")
	case PairingUnpaired:
		w.add("unpaired")
	default:
		return Page[RelayRow]{}, &InvalidInputError{Field: "filter.pairing", Reason: "unknown pairing " + strconv.Quote(string(f.Pairing))}
	}
	q := `SELECT id, relay_id, stream_id, seq, unit_index, request_seq, response_seq, unpaired,
		protocol, service, application, supplier, weight, policy, policy_version, observed_at
		FROM relays` + w.sql() + " ORDER BY id LIMIT " + w.param(first+1)
	return listPage(ctx, s, "relays", q, w.args, first, func(row pgx.CollectableRow) (RelayRow, error) {
		var r RelayRow
		var unpaired bool
		err := row.Scan(&r.ID, &r.RelayID, &r.StreamID, &r.Seq, &r.UnitIndex, &r.RequestSeq, &r.ResponseSeq, &unpaired,
			&r.Protocol, &r.Service, &r.Application, &r.Supplier, &r.Weight, &r.Policy, &r.PolicyVersion, &r.ObservedAt)
		switch {
		case unpaired:
			r.Pairing = PairingUnpaired
		case r.RequestSeq != nil && r.ResponseSeq != nil:
			r.Pairing = PairingPaired
		default:
			r.Pairing = PairingPending
		}
		return r, err
	})
}
