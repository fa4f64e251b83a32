package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// StreamFilter selects streams. Empty strings, zero times and a nil Open
// match everything.
type StreamFilter struct {
	Service, Application, Supplier, Protocol string
	// From (inclusive) and To (exclusive) bound opened_at.
	From, To time.Time
	// Open, if set, selects streams still open (true) or closed (false).
	Open *bool
}

const streamCursor = "stream"

// Cursor returns the stream's cursor in ListStreams.
func (r Stream) Cursor() string {
	return encodeCursor(streamCursor, strconv.FormatInt(r.OpenedAt.UnixMicro(), 10)+"_"+uuid.UUID(r.StreamID).String())
}

// ListStreams returns up to first streams that f selects, newest first (by
// opened_at, then id), starting after the stream whose cursor is after
// ("" for the first page).
func (s *Store) ListStreams(ctx context.Context, f StreamFilter, first int, after string) (Page[Stream], error) {
	if err := checkPageSize(first); err != nil {
		return Page[Stream]{}, err
	}
	if err := checkTimeRange("filter.to", f.From, f.To); err != nil {
		return Page[Stream]{}, err
	}
	var w sqlWhere
	key, err := decodeCursor(streamCursor, after)
	if err != nil {
		return Page[Stream]{}, err
	}
	if key != "" {
		micros, id, ok := strings.Cut(key, "_")
		us, err1 := strconv.ParseInt(micros, 10, 64)
		sid, err2 := uuid.Parse(id)
		if !ok || err1 != nil || err2 != nil {
			return Page[Stream]{}, &InvalidInputError{Field: "after", Reason: "not a cursor of this list"}
		}
		at := time.UnixMicro(us).UTC()
		// Matches the index streams_opened_at (opened_at DESC, stream_id).
		w.add("opened_at <= ? AND (opened_at < ? OR stream_id > ?)", at, at, sid)
	}
	w.eq("service", f.Service)
	w.eq("application", f.Application)
	w.eq("supplier", f.Supplier)
	w.eq("protocol", f.Protocol)
	if !f.From.IsZero() {
		w.add("opened_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		w.add("opened_at < ?", f.To)
	}
	if f.Open != nil {
		if *f.Open {
			w.add("closed_at IS NULL")
		} else {
			w.add("closed_at IS NOT NULL")
		}
	}
	q := "SELECT " + streamColumns + " FROM streams" + w.sql() +
		" ORDER BY opened_at DESC, stream_id LIMIT " + w.param(first+1)
	return listPage(ctx, s, "streams", q, w.args, first, scanStream)
}

// StreamByID returns the stream with the given id; found is false if there is
// none.
func (s *Store) StreamByID(ctx context.Context, id uuid.UUID) (r Stream, found bool, err error) {
	rows, err := s.pool.Query(ctx, "SELECT "+streamColumns+" FROM streams WHERE stream_id = $1", id)
	if err != nil {
		return Stream{}, false, fmt.Errorf("ledger: stream: %w", err)
	}
	r, err = pgx.CollectExactlyOneRow(rows, scanStream)
	if errors.Is(err, pgx.ErrNoRows) {
		return Stream{}, false, nil
	}
	if err != nil {
		return Stream{}, false, fmt.Errorf("ledger: stream: %w", err)
	}
	return r, true, nil
}

// MessageRow is one message of a stream, as metered.
type MessageRow struct {
	StreamID       uuid.UUID
	Seq            int64
	ObservedAt     time.Time
	Direction      string // CLIENT_TO_UPSTREAM | UPSTREAM_TO_CLIENT
	Role           string // REQUEST | RESPONSE | NOTIFICATION | ERROR | OTHER
	Method         string
	BatchSize      int32
	RPCID          string
	SubscriptionID string
	WireSize       int64
	PayloadSize    int64
	Units          int64
}

const messageCursor = "message"

// Cursor returns the message's cursor in ListMessages.
func (m MessageRow) Cursor() string {
	return encodeCursor(messageCursor, m.StreamID.String()+"_"+strconv.FormatInt(m.Seq, 10))
}

// ListMessages returns up to first messages of the stream, in seq order,
// starting after the message whose cursor is after ("" for the first
// page). A cursor from another stream is invalid input.
func (s *Store) ListMessages(ctx context.Context, streamID uuid.UUID, first int, after string) (Page[MessageRow], error) {
	if err := checkPageSize(first); err != nil {
		return Page[MessageRow]{}, err
	}
	key, err := decodeCursor(messageCursor, after)
	if err != nil {
		return Page[MessageRow]{}, err
	}
	var w sqlWhere
	w.add("stream_id = ?", streamID)
	if key != "" {
		id, seqText, _ := strings.Cut(key, "_")
		seq, err := strconv.ParseInt(seqText, 10, 64)
		if id != streamID.String() || err != nil {
			return Page[MessageRow]{}, &InvalidInputError{Field: "after", Reason: "not a cursor of this stream's messages"}
		}
		w.add("seq > ?", seq)
	}
	q := `SELECT stream_id, seq, observed_at, direction, role, method, batch_size, rpc_id, subscription_id,
		wire_size, payload_size, units FROM messages` + w.sql() + " ORDER BY seq LIMIT " + w.param(first+1)
	return listPage(ctx, s, "messages", q, w.args, first, func(row pgx.CollectableRow) (MessageRow, error) {
		var m MessageRow
		err := row.Scan(&m.StreamID, &m.Seq, &m.ObservedAt, &m.Direction, &m.Role, &m.Method, &m.BatchSize, &m.RPCID,
			&m.SubscriptionID, &m.WireSize, &m.PayloadSize, &m.Units)
		return m, err
	})
}
