package ws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/semaphore"
)

// Message buffers and the edge-wide budget they are held against.
//
// Every message the edge holds is in a msgBuf, from the moment its first
// frame arrives until it has been written to the other side or dropped. A
// msgBuf's capacity is acquired from the budget (Config.BufferBytes) before
// the buffer grows to it, so the capacity of all buffers in use never
// exceeds the budget. A message starts in a minBuf buffer, the common case;
// one that outgrows it doubles in place and is left to the GC once
// released. Released minBuf buffers are kept for reuse on a free list of at
// most a sixteenth of the budget: a sync.Pool would keep alive, until the
// next GCs, every buffer of the last burst, memory no budget counts.
const minBuf = 4 << 10

// msgBuf is one message on its way through the edge.
type msgBuf struct {
	b    bytes.Buffer
	held int64 // budget held: b's capacity
	typ  websocket.MessageType
	seq  uint64
	// With failover (package subscriptions): what the message is to the
	// edge, its number among the client's messages, and whether it names
	// a subscription to rewrite when written upstream.
	kind    kind
	ticket  uint64
	rewrite bool
}

// errOverloaded reports a reader that waited too long for the budget.
var errOverloaded = errors.New("ws: edge buffer budget exhausted")

// buffers hands out message buffers against the edge's budget.
type buffers struct {
	sem  *semaphore.Weighted
	used atomic.Int64 // for the metric
	wait time.Duration
	free chan *msgBuf // idle minBuf buffers
}

func newBuffers(budget int64, wait time.Duration) *buffers {
	idle := min(max(budget/minBuf/16, 16), 4096)
	return &buffers{sem: semaphore.NewWeighted(budget), wait: wait, free: make(chan *msgBuf, idle)}
}

// bufFor is the capacity of the buffer a message of n bytes ends up in when
// read with read: it needs bytes.MinRead to spare.
func bufFor(n int64) int64 {
	need := n + bytes.MinRead + 1
	if need <= minBuf {
		return minBuf
	}
	return 1 << bits.Len64(uint64(need-1))
}

// acquire takes n bytes of budget, waiting at most b.wait for them; an
// error is errOverloaded or ctx's.
func (b *buffers) acquire(ctx context.Context, n int64) error {
	if !b.sem.TryAcquire(n) {
		wctx, cancel := context.WithTimeout(ctx, b.wait)
		err := b.sem.Acquire(wctx, n)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: no %d bytes within %v", errOverloaded, n, b.wait)
		}
	}
	b.used.Add(n)
	return nil
}

func (b *buffers) release(n int64) {
	b.used.Add(-n)
	b.sem.Release(n)
}

// get returns an empty minBuf buffer with its budget held.
func (b *buffers) get(ctx context.Context) (*msgBuf, error) {
	if err := b.acquire(ctx, minBuf); err != nil {
		return nil, err
	}
	return b.newMsg(), nil
}

// newMsg is an empty minBuf buffer whose budget the caller holds.
func (b *buffers) newMsg() *msgBuf {
	var m *msgBuf
	select {
	case m = <-b.free:
	default:
		m = &msgBuf{}
		m.b.Grow(minBuf)
	}
	m.held = minBuf
	return m
}

// tryGet is get without waiting: nil if the budget has no room now.
func (b *buffers) tryGet() *msgBuf {
	if !b.sem.TryAcquire(minBuf) {
		return nil
	}
	b.used.Add(minBuf)
	return b.newMsg()
}

// put releases m's budget, and keeps its buffer for reuse if it did not
// grow.
func (b *buffers) put(m *msgBuf) {
	b.release(m.held)
	if m.b.Cap() == minBuf {
		m.b.Reset()
		m.held, m.seq, m.kind, m.ticket, m.rewrite = 0, 0, fromPeer, 0, false
		select {
		case b.free <- m:
		default:
		}
	}
}

// grow doubles m's capacity, holding the budget for it first.
func (b *buffers) grow(ctx context.Context, m *msgBuf) error {
	if err := b.acquire(ctx, m.held); err != nil {
		return err
	}
	m.b.Grow(int(m.held)) // to exactly twice: bytes.Buffer grows to at least 2×cap
	m.held *= 2
	return nil
}

// errTooBig reports a message over the limit.
var errTooBig = errors.New("ws: message too big")

// read reads one message from r into a new buffer, holding budget for its
// capacity before it grows. A message of more than limit bytes is
// errTooBig. lr is scratch space, reused across calls.
//
// bytes.Buffer.ReadFrom grows its buffer whenever fewer than MinRead bytes
// are free, so each call is handed a reader limited to leave MinRead free:
// the buffer only ever grows here, against the budget.
func (b *buffers) read(ctx context.Context, r io.Reader, limit int64, lr *io.LimitedReader) (*msgBuf, error) {
	m, err := b.get(ctx)
	if err != nil {
		return nil, err
	}
	for {
		free := int64(m.b.Available() - bytes.MinRead)
		lr.R, lr.N = r, min(free, limit-int64(m.b.Len())+1)
		if _, err := m.b.ReadFrom(lr); err != nil {
			b.put(m)
			return nil, err
		}
		if lr.N > 0 { // r reached its end: the message is whole
			return m, nil
		}
		if int64(m.b.Len()) > limit {
			b.put(m)
			return nil, errTooBig
		}
		if err := b.grow(ctx, m); err != nil {
			b.put(m)
			return nil, err
		}
	}
}
