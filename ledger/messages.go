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
	// Origin is the event's enum number (event.Origin): who wrote the
	// message, 0 when the edge did not say.
	Origin int16
	// Absorbed: the edge recorded the message and kept it from the other
	// side by design (a request it answered itself). It never crossed, and
	// is not in the usage rollups.
	Absorbed bool

	// RelayAt is the time the message's relays are settled by, its
	// request's observation time (RelayTime); not a column, it is
	// derived from the row and its counterpart (relayAtSQL). Commit
	// records a message whose RelayAt is in a settled window as a late
	// relay.
	RelayAt time.Time
}

// RelayTime returns the time a message's relays belong to: its request's
// observation time. For an answer (Answers: a response or an error from
// the upstream) metered with a counterpart (the latest request of its
// stream) that is the request's observed time, or its own when earlier
// (clocks); for every other message, notifications included, its own
// observed time. So a request at 10:00:59 answered at 10:01:01 is settled
// in the window of 10:00:59, and a subscription's notifications in the
// windows they arrive in.
func RelayTime(answer bool, observed time.Time, counterpart bool, requestAt time.Time) time.Time {
	if answer && counterpart && requestAt.Before(observed) {
		return requestAt
	}
	return observed
}

// Answers reports whether a message of the given direction and role (the
// event's enum numbers) answers a request: a RESPONSE or an ERROR from the
// upstream. Notifications and other messages answer nothing, whatever came
// before them.
func Answers(direction, role int16) bool {
	return direction == directionToClient && (role == roleResponse || role == roleError)
}

// roleResponse and roleError are event.Role_RESPONSE and event.Role_ERROR.
const roleResponse, roleError = 2, 4

// relayAtSQL is RelayTime of the messages row m in SQL.
const relayAtSQL = `CASE WHEN m.direction = 2 AND m.role IN (2, 4) AND m.counterpart_seq IS NOT NULL THEN least(m.observed_at,
		(SELECT r.observed_at FROM messages r WHERE r.stream_id = m.stream_id AND r.seq = m.counterpart_seq))
	ELSE m.observed_at END`

// directionToClient is event.Direction_UPSTREAM_TO_CLIENT: the response
// side; every other direction is the request side.
const directionToClient = 2

// Response reports whether m is on the response side.
func (m *Message) Response() bool { return m.Direction == directionToClient }

// Crossed reports whether m, a message of st, crossed the edge: it was not
// absorbed, and st's close does not say it stopped short.
func (m *Message) Crossed(st *Stream) bool { return !m.Absorbed && st.Crossed(m.Response(), m.Seq) }

var messageColumns = []string{"stream_id", "seq", "observed_at", "direction", "role", "method",
	"batch_size", "rpc_id", "subscription_id", "wire_size", "payload_size", "units", "counterpart_seq",
	"origin", "absorbed_by_edge"}

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
			e.int2(m.Origin)
			e.bool(m.Absorbed)
		}
	})
	if err != nil {
		return fmt.Errorf("ledger: copy messages: %w", err)
	}
	return nil
}
