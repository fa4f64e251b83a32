package meter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// unknown is the service, application, supplier and protocol of a stream
// whose StreamOpened the meter never saw: its events are metered under this
// placeholder identity (message policy v1, weight 1) so no usage is lost,
// with an unknown_stream finding.
const unknown = "unknown"

// The observation times the meter accepts; an event outside them is
// quarantined rather than rolled up into a minute no query will look at.
var (
	earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	latest   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
)

// add meters one record. It returns an error wrapping event.ErrUnknownMajor
// for a record this build must not guess about (the record is then not
// part of the batch), and other errors for what a retry may fix (Postgres
// unreachable). A record that can never be metered is quarantined.
func (bl *builder) add(ctx context.Context, rec *kafka.Message) error {
	if len(rec.Value) == 0 {
		bl.quarantine(rec, "empty record value (a tombstone, or not an event)")
		return nil
	}
	ev, err := bl.dec.Decode(rec.Value)
	if err != nil {
		if errors.Is(err, event.ErrUnknownMajor) {
			return err
		}
		bl.quarantine(rec, err.Error())
		return nil
	}
	bl.ev = ev
	if why := invalid(ev); why != "" {
		bl.quarantine(rec, why)
		return nil
	}
	bl.b.To = rec.Offset + 1
	if unclean := cleanEvent(ev); unclean != "" {
		bl.streamFinding(FindingUncleanText, uuid.UUID(ev.StreamId), int64(ev.Seq), ev.ObservedAt, unclean)
	}
	id, seq := uuid.UUID(ev.StreamId), int64(ev.Seq)
	s := bl.streams[id]
	fresh := s == nil
	if fresh {
		if s, err = bl.open(ctx, id, rec); err != nil {
			return err
		}
		bl.keep(s)
	} else if !bl.sequence(s, seq, rec) {
		return nil
	}
	if o := unixTime(ev.ObservedAt); o.After(s.LastObservedAt) {
		s.LastObservedAt = o
	}
	if o := unixTime(ev.ObservedAt); o.After(bl.now) {
		bl.now = o
	}
	switch body := ev.Body.(type) {
	case *event.Event_Message:
		bl.message(s, seq, ev.ObservedAt, body.Message)
	case *event.Event_Closed:
		bl.close(s, seq, ev.ObservedAt, body.Closed)
	case *event.Event_Opened:
		if !fresh {
			// A StreamOpened for a stream already metered (and not a
			// duplicate): its identity stays as first recorded.
			bl.streamFinding(FindingReopened, id, seq, ev.ObservedAt,
				fmt.Sprintf("StreamOpened at seq %d of a stream already metered; identity kept", seq))
		}
	}
	return nil
}

// invalid says why a decoded event cannot be metered, or "".
func invalid(ev *event.Event) string {
	switch {
	case len(ev.StreamId) != 16:
		return fmt.Sprintf("stream id of %d bytes", len(ev.StreamId))
	case ev.Seq == 0 || ev.Seq > math.MaxInt64:
		return fmt.Sprintf("seq %d out of range", ev.Seq)
	case ev.Body == nil:
		return "event without a body"
	case ev.ObservedAt < earliest || ev.ObservedAt >= latest:
		return fmt.Sprintf("observed_at %d (unix ns) out of range", ev.ObservedAt)
	}
	if m := ev.GetMessage(); m != nil {
		switch {
		case m.Direction < 0 || m.Direction > math.MaxInt16 || m.Role < 0 || m.Role > math.MaxInt16 ||
			m.Origin < 0 || m.Origin > math.MaxInt16:
			return fmt.Sprintf("direction %d, role %d or origin %d out of range", m.Direction, m.Role, m.Origin)
		case m.WireSize > math.MaxInt64 || m.PayloadSize > math.MaxInt64 || m.BatchSize > math.MaxInt32:
			return "wire_size, payload_size or batch_size out of range"
		}
	}
	if c := ev.GetClosed(); c != nil {
		for _, v := range []*uint64{c.ForwardedToUpstreamThroughSeq, c.ForwardedToClientThroughSeq} {
			if v != nil && *v > math.MaxInt64 {
				return "forwarded-through seq out of range"
			}
		}
	}
	return ""
}
