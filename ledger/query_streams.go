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
	// Scope is whose streams may be returned, whatever the rest selects.
	Scope                                    Scope
	Service, Application, Supplier, Protocol string
	// From (inclusive) and To (exclusive) bound opened_at.
	From, To time.Time
	// Open, if set, selects streams still open (true) or closed (false).
	Open *bool
}

const streamCursor = "stream"

// Cursor returns the stream's cursor in ListStreams.
func (r Stream) Cursor() string {
	return encodeCursor(streamCursor, strconv.FormatInt(r.OpenedAt.UnixMicro(), 10)+"_"+r.StreamID.String())
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
	f.Scope.apply(&w, "application", "supplier")
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

// StreamByID returns the stream with the given id if scope lets it be seen;
// found is false if there is none, or none the scope lets through (the
// two look alike).
func (s *Store) StreamByID(ctx context.Context, scope Scope, id uuid.UUID) (r Stream, found bool, err error) {
	var w sqlWhere
	scope.apply(&w, "application", "supplier")
	w.add("stream_id = ?", id)
	rows, err := s.pool.Query(ctx, "SELECT "+streamColumns+" FROM streams"+w.sql(), w.args...)
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

const messageCursor = "message"

// Cursor returns the message's cursor in ListMessages.
func (m Message) Cursor() string {
	return encodeCursor(messageCursor, m.StreamID.String()+"_"+strconv.FormatInt(m.Seq, 10))
}

// ListMessages returns up to first messages of the stream, in seq order,
// starting after the message whose cursor is after ("" for the first
// page); none if scope does not let the stream be seen. A cursor from
// another stream is invalid input.
func (s *Store) ListMessages(ctx context.Context, scope Scope, streamID uuid.UUID, first int, after string) (Page[Message], error) {
	if err := checkPageSize(first); err != nil {
		return Page[Message]{}, err
	}
	key, err := decodeCursor(messageCursor, after)
	if err != nil {
		return Page[Message]{}, err
	}
	var w sqlWhere
	w.add("stream_id = ?", streamID)
	if !scope.Unrestricted() {
		// The stream's own scope decides for all its messages.
		w.add(streamVisible(&w, scope, "messages.stream_id"))
	}
	if key != "" {
		id, seqText, _ := strings.Cut(key, "_")
		seq, err := strconv.ParseInt(seqText, 10, 64)
		if id != streamID.String() || err != nil {
			return Page[Message]{}, &InvalidInputError{Field: "after", Reason: "not a cursor of this stream's messages"}
		}
		w.add("seq > ?", seq)
	}
	q := `SELECT stream_id, seq, observed_at, direction, role, method, batch_size, rpc_id, subscription_id,
		wire_size, payload_size, units, counterpart_seq, origin, absorbed_by_edge FROM messages` + w.sql() + " ORDER BY seq LIMIT " + w.param(first+1)
	return listPage(ctx, s, "messages", q, w.args, first, func(row pgx.CollectableRow) (Message, error) {
		var m Message
		err := row.Scan(&m.StreamID, &m.Seq, &m.ObservedAt, &m.Direction, &m.Role, &m.Method, &m.BatchSize,
			&m.RPCID, &m.SubscriptionID, &m.WireSize, &m.PayloadSize, &m.Units, &m.CounterpartSeq, &m.Origin, &m.Absorbed)
		return m, err
	})
}

// CrossedRelays returns the relays of st's messages that crossed the edge:
// st.Relays, less those of messages its close says never crossed.
func (s *Store) CrossedRelays(ctx context.Context, st *Stream) (int64, error) {
	if !uncrossed(st, false) && !uncrossed(st, true) {
		return st.Relays, nil
	}
	var taken int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(m.units), 0)::bigint FROM messages m
		WHERE m.stream_id = $1 AND m.seq > least(coalesce($2, 9223372036854775807), coalesce($3, 9223372036854775807))
			AND CASE WHEN m.direction = 2 THEN m.seq > $3 ELSE m.seq > $2 END`,
		st.StreamID, ptr(st.ForwardedToUpstreamSeq), ptr(st.ForwardedToClientSeq)).Scan(&taken)
	if err != nil {
		return 0, fmt.Errorf("ledger: crossed relays of %s: %w", st.StreamID, err)
	}
	return st.Relays - taken, nil
}
