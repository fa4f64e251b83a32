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
	r    *Recorder
	id   uuid.UUID
	part *partition // pinned at Open for the stream's life

	mu     sync.Mutex
	closed bool
	seq    uint64
	chain  [event.ChainSize]byte
	ev     event.Event // reused for every event of the stream
	body   event.Event_Opened
	msg    event.Event_Message
	end    event.Event_Closed
	counts [3]dirCount // indexed by event.Direction

	// Durability, advanced in seq order: every event up to durable is
	// durable or rejected; rejected is the first rejected seq (0: none)
	// and rejectErr why. moved is closed when durable next moves (nil
	// while nobody waits).
	ackMu     sync.Mutex
	durable   uint64
	rejected  uint64
	rejectErr error
	moved     chan struct{}
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

// WaitDurable blocks until the stream's events up to seq are durable, or
// ctx ends. Durable means acknowledged by Kafka, or appended to the local
// spool and fsynced (Config.SpoolDir). An edge that forwards a message only
// after this has returned nil for its event never lets a message cross
// unrecorded, whatever happens to the edge afterwards. An error wrapping
// ErrRejected means Kafka refused an event up to seq for good: it will
// never be durable, and the stream's chain breaks there.
func (s *Stream) WaitDurable(ctx context.Context, seq uint64) error {
	for {
		s.ackMu.Lock()
		if s.rejected != 0 && seq >= s.rejected {
			err := fmt.Errorf("record: stream %s seq %d: %w: %w", s.id, s.rejected, ErrRejected, s.rejectErr)
			s.ackMu.Unlock()
			return err
		}
		if s.durable >= seq {
			s.ackMu.Unlock()
			return nil
		}
		if s.moved == nil {
			s.moved = make(chan struct{})
		}
		moved := s.moved
		s.ackMu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return fmt.Errorf("record: waiting for seq %d to be durable: %w", seq, context.Cause(ctx))
		}
	}
}

// resolved records that the stream's events up to seq are durable, or
// rejected when err is not nil; the recorder resolves a stream's events in
// seq order.
func (s *Stream) resolved(seq uint64, err error) {
	s.ackMu.Lock()
	if err != nil && s.rejected == 0 {
		s.rejected, s.rejectErr = seq, err
	}
	if seq > s.durable {
		s.durable = seq
		if s.moved != nil {
			close(s.moved)
			s.moved = nil
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
