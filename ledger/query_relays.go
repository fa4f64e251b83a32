package ledger

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
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

// RelayID returns the id of the relay for unit unitIndex of the message at
// seq of a stream: sha256(stream id ‖ seq as big-endian uint64 ‖ unit index
// as big-endian uint32).
func RelayID(streamID uuid.UUID, seq uint64, unitIndex uint32) [32]byte {
	var buf [16 + 8 + 4]byte
	copy(buf[:16], streamID[:])
	binary.BigEndian.PutUint64(buf[16:24], seq)
	binary.BigEndian.PutUint32(buf[24:], unitIndex)
	return sha256.Sum256(buf[:])
}

// RelayFilter selects relays. Empty strings, zero times, a nil stream id
// and an empty pairing match everything.
type RelayFilter struct {
	// Scope is whose relays may be returned, whatever the rest selects.
	Scope                                    Scope
	Service, Application, Supplier, Protocol string
	StreamID                                 *uuid.UUID
	// From (inclusive) and To (exclusive) bound observed_at.
	From, To time.Time
	Pairing  Pairing
}

// Relay is one relay: unit UnitIndex of the message at Seq of a stream,
// of uniform weight, pairing a request with a response. Relays are not
// stored: each is read from its message and stream. A message that was
// recorded but never crossed the edge yields none.
type Relay struct {
	StreamID      uuid.UUID
	Seq           int64 // the message that yielded it
	UnitIndex     int32
	RequestSeq    sql.Null[int64]
	ResponseSeq   sql.Null[int64]
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

// ID returns the relay's id, RelayID of its key.
func (r Relay) ID() [32]byte { return RelayID(r.StreamID, uint64(r.Seq), uint32(r.UnitIndex)) }

const relayCursor = "relay"

var errBadCursor = errors.New("not a cursor")

// Cursor returns the relay's cursor in ListRelays.
func (r Relay) Cursor() string {
	return encodeCursor(relayCursor, r.StreamID.String()+"_"+strconv.FormatInt(r.Seq, 10)+"_"+strconv.FormatInt(int64(r.UnitIndex), 10))
}

// crossedSQL is true for a message m of stream s that crossed the edge: not
// absorbed by it, and not after where the close says its direction
// stopped.
const crossedSQL = `NOT m.absorbed_by_edge AND CASE WHEN m.direction = 2 THEN s.forwarded_to_client_seq IS NULL OR m.seq <= s.forwarded_to_client_seq
	ELSE s.forwarded_to_upstream_seq IS NULL OR m.seq <= s.forwarded_to_upstream_seq END`

// ListRelays returns up to first relays that f selects, stream by stream
// (streams in the order of their ids, UUIDv7: the order they were opened),
// by seq and unit within a stream, starting after the relay whose cursor is
// after ("" for the first page). It is the order of the messages' primary
// key, so a page costs an index range scan however deep it is.
func (s *Store) ListRelays(ctx context.Context, f RelayFilter, first int, after string) (Page[Relay], error) {
	if err := checkPageSize(first); err != nil {
		return Page[Relay]{}, err
	}
	if err := checkTimeRange("filter.to", f.From, f.To); err != nil {
		return Page[Relay]{}, err
	}
	var w sqlWhere
	f.Scope.apply(&w, "s.application", "s.supplier")
	w.add("m.units > 0")
	w.add(crossedSQL)
	key, err := decodeCursor(relayCursor, after)
	if err != nil {
		return Page[Relay]{}, err
	}
	if key != "" {
		parts := strings.Split(key, "_")
		var id uuid.UUID
		var seq, unit int64
		var err1, err2, err3 error = errBadCursor, nil, nil
		if len(parts) == 3 {
			id, err1 = uuid.Parse(parts[0])
			seq, err2 = strconv.ParseInt(parts[1], 10, 64)
			unit, err3 = strconv.ParseInt(parts[2], 10, 32)
		}
		if err1 != nil || err2 != nil || err3 != nil || seq < 0 || unit < 0 {
			return Page[Relay]{}, &InvalidInputError{Field: "after", Reason: "not a cursor of this list"}
		}
		w.add("(m.stream_id, m.seq) >= (?, ?) AND ((m.stream_id, m.seq) > (?, ?) OR u.i > ?)", id, seq, id, seq, unit)
	}
	w.eq("s.service", f.Service)
	w.eq("s.application", f.Application)
	w.eq("s.supplier", f.Supplier)
	w.eq("s.protocol", f.Protocol)
	if f.StreamID != nil {
		w.add("m.stream_id = ?", *f.StreamID)
	}
	if !f.From.IsZero() {
		w.add("m.observed_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		w.add("m.observed_at < ?", f.To)
	}
	const counterpart = "coalesce(m.counterpart_seq, s.first_counterpart_seq)"
	switch f.Pairing {
	case "":
	case PairingPaired:
		w.add(counterpart + " IS NOT NULL")
	case PairingPending:
		w.add(counterpart + " IS NULL AND s.closed_at IS NULL")
	case PairingUnpaired:
		w.add(counterpart + " IS NULL AND s.closed_at IS NOT NULL")
	default:
		return Page[Relay]{}, &InvalidInputError{Field: "filter.pairing", Reason: "unknown pairing " + strconv.Quote(string(f.Pairing))}
	}
	q := `SELECT u.i, m.stream_id, m.seq, m.direction, ` + counterpart + `, s.closed_at IS NOT NULL,
		s.protocol, s.service, s.application, s.supplier, s.compute_units, p.name, p.version, m.observed_at
		FROM messages m JOIN streams s ON s.stream_id = m.stream_id JOIN policies p ON p.id = s.policy_id
		CROSS JOIN LATERAL generate_series(0, m.units - 1) AS u(i)` + w.sql() +
		" ORDER BY m.stream_id, m.seq, u.i LIMIT " + w.param(first+1)
	return listPage(ctx, s, "relays", q, w.args, first, scanRelay)
}

func scanRelay(row pgx.CollectableRow) (Relay, error) {
	var r Relay
	var direction int16
	var other sql.Null[int64]
	var closed bool
	err := row.Scan(&r.UnitIndex, &r.StreamID, &r.Seq, &direction, &other, &closed,
		&r.Protocol, &r.Service, &r.Application, &r.Supplier, &r.Weight, &r.Policy, &r.PolicyVersion, &r.ObservedAt)
	own := sql.Null[int64]{V: r.Seq, Valid: true}
	if direction == directionToClient {
		r.RequestSeq, r.ResponseSeq = other, own
	} else {
		r.RequestSeq, r.ResponseSeq = own, other
	}
	switch {
	case other.Valid:
		r.Pairing = PairingPaired
	case closed:
		r.Pairing = PairingUnpaired
	default:
		r.Pairing = PairingPending
	}
	return r, err
}
