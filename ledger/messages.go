package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Message is a messages row: one Message event as metered. A message worth
// N units is N relays (unit 0 to N-1, each of its stream's weight), so
// relays are read from messages, never stored twice.
type Message struct {
	StreamID   uuid.UUID
	Seq        int64
	ObservedAt time.Time
	// Direction and Role are the event's enum numbers (event.Direction,
	// event.Role).
	Direction      int16
	Role           int16
	Method         string
	BatchSize      int32
	RPCID          string
	SubscriptionID string
	WireSize       int64
	PayloadSize    int64
	Units          int64
	// CounterpartSeq is the latest message of the other side when this one
	// was metered; NULL when none had been seen yet, and then the stream's
	// FirstCounterpartSeq is its counterpart.
	CounterpartSeq sql.Null[int64]

	// RelayAt is the time the message's relays are settled by, its
	// request's observation time (RelayTime); not a column, it is
	// derived from the row and its counterpart (relayAtSQL). Commit
	// records a message whose RelayAt is in a settled window as a late
	// relay.
	RelayAt time.Time
}

// RelayTime returns the time a message's relays belong to: its request's
// observation time. For a response-side message metered with a
// counterpart (the latest request of its stream) that is the request's
// observed time, or its own when earlier (clocks); for every other message
// its own observed time. So a request at 10:00:59 answered at 10:01:01 is
// settled in the window of 10:00:59.
func RelayTime(response bool, observed time.Time, counterpart bool, requestAt time.Time) time.Time {
	if response && counterpart && requestAt.Before(observed) {
		return requestAt
	}
	return observed
}

// relayAtSQL is RelayTime of the messages row m in SQL.
const relayAtSQL = `CASE WHEN m.direction = 2 AND m.counterpart_seq IS NOT NULL THEN least(m.observed_at,
		(SELECT r.observed_at FROM messages r WHERE r.stream_id = m.stream_id AND r.seq = m.counterpart_seq))
	ELSE m.observed_at END`

// directionToClient is event.Direction_UPSTREAM_TO_CLIENT: the response
// side; every other direction is the request side.
const directionToClient = 2

// Response reports whether m is on the response side.
func (m *Message) Response() bool { return m.Direction == directionToClient }

var messageColumns = []string{"stream_id", "seq", "observed_at", "direction", "role", "method",
	"batch_size", "rpc_id", "subscription_id", "wire_size", "payload_size", "units", "counterpart_seq"}

func copyMessages(ctx context.Context, tx pgx.Tx, rows []Message) error {
	if len(rows) == 0 {
		return nil
	}
	err := copyIn(ctx, tx, "messages", messageColumns, func(e *copyEncoder) {
		for i := range rows {
			m := &rows[i]
			e.row(len(messageColumns))
			e.uuid(m.StreamID)
			e.int8(m.Seq)
			e.timestamptz(m.ObservedAt)
			e.int2(m.Direction)
			e.int2(m.Role)
			e.text(m.Method)
			e.int4(m.BatchSize)
			e.text(m.RPCID)
			e.text(m.SubscriptionID)
			e.int8(m.WireSize)
			e.int8(m.PayloadSize)
			e.int8(m.Units)
			e.nullInt8(m.CounterpartSeq)
		}
	})
	if err != nil {
		return fmt.Errorf("ledger: copy messages: %w", err)
	}
	return nil
}
