package record

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// Stream is one recorded stream (one client connection). Record and Close
// are safe for concurrent use; the order in which calls are serialised is
// the order of the stream's sequence numbers.
type Stream struct {
	r  *Recorder
	id uuid.UUID

	mu     sync.Mutex
	closed bool
	seq    uint64
	chain  [event.ChainSize]byte
	ev     event.Event // reused for every event of the stream
	body   event.Event_Opened
	msg    event.Event_Message
	end    event.Event_Closed
	counts [3]dirCount // indexed by event.Direction

	// The highest seq Kafka acknowledged, and a channel closed when it
	// next moves (nil while nobody waits).
	ackMu   sync.Mutex
	ackSeq  uint64
	ackMove chan struct{}
}

type dirCount struct{ messages, bytes uint64 }

// ID returns the stream id.
func (s *Stream) ID() uuid.UUID { return s.id }

// Record records m as the stream's next event, stamping its seq, edge id,
// observation time and chain; m is not retained. It blocks while the
// recorder's buffer is full, until ctx ends. After Close it returns
// ErrClosed. The per-direction message count and byte count (wire_size) of
// the stream's StreamClosed are kept here.
func (s *Stream) Record(ctx context.Context, m *event.Message) error {
	_, err := s.Append(ctx, m)
	return err
}

// Append is Record that also returns the seq the event took, for
// WaitDurable.
func (s *Stream) Append(ctx context.Context, m *event.Message) (uint64, error) {
	if m == nil {
		return 0, fmt.Errorf("record: nil message")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	s.msg.Message = m
	s.ev.Body = &s.msg
	err := s.r.append(ctx, s)
	s.msg.Message = nil
	if err != nil {
		return 0, err
	}
	d := m.Direction
	if d < 0 || int(d) >= len(s.counts) {
		d = 0
	}
	s.counts[d].messages++
	s.counts[d].bytes += m.WireSize
	return s.seq, nil
}

// WaitDurable blocks until the stream's events up to seq are durable
// (acknowledged by Kafka), or ctx ends. An edge that forwards a message
// only after this has returned nil for its event never lets a message
// cross unrecorded, whatever happens to the edge afterwards. An error
// wrapping ErrRejected means an event up to seq will never be durable.
func (s *Stream) WaitDurable(ctx context.Context, seq uint64) error {
	for {
		s.ackMu.Lock()
		if s.ackSeq >= seq {
			s.ackMu.Unlock()
			return nil
		}
		if s.ackMove == nil {
			s.ackMove = make(chan struct{})
		}
		moved := s.ackMove
		s.ackMu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return fmt.Errorf("record: waiting for acknowledgement of seq %d: %w", seq, context.Cause(ctx))
		}
	}
}

// acked records that Kafka acknowledged the stream's event seq; the
// writer acknowledges a stream's events in seq order.
func (s *Stream) acked(seq uint64) {
	s.ackMu.Lock()
	if seq > s.ackSeq {
		s.ackSeq = seq
		if s.ackMove != nil {
			close(s.ackMove)
			s.ackMove = nil
		}
	}
	s.ackMu.Unlock()
}

// Close records closed as the stream's last event, filling in its
// per-direction counts from the messages recorded; closed may be nil. A
// failed Close (ctx ended while the buffer was full) may be retried.
func (s *Stream) Close(ctx context.Context, closed *event.StreamClosed) error {
	if closed == nil {
		closed = &event.StreamClosed{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	up, down := s.counts[event.Direction_CLIENT_TO_UPSTREAM], s.counts[event.Direction_UPSTREAM_TO_CLIENT]
	closed.MessagesToUpstream, closed.BytesToUpstream = up.messages, up.bytes
	closed.MessagesToClient, closed.BytesToClient = down.messages, down.bytes
	s.end.Closed = closed
	s.ev.Body = &s.end
	err := s.r.append(ctx, s)
	s.end.Closed = nil
	if err != nil {
		return err
	}
	s.closed = true
	s.r.streamsOpen.Add(-1)
	return nil
}
