package ws

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestReadSizes reads messages of sizes around every boundary: each comes
// back whole, in the buffer bufFor says, with that much budget held, and
// all of it released after put; a message over the limit is errTooBig and
// holds nothing.
func TestReadSizes(t *testing.T) {
	const limit = 300 << 10
	b := newBuffers(4<<20, time.Second)
	var lr io.LimitedReader
	for _, n := range []int{0, 1, 3583, 3584, 3585, 4096, 7680, 7681, 65000, 65536, limit - 1, limit, limit + 1, 2 * limit} {
		msg := bytes.Repeat([]byte{'x'}, n)
		m, err := b.read(context.Background(), &oneByOne{r: bytes.NewReader(msg)}, limit, &lr)
		if n > limit {
			if !errors.Is(err, errTooBig) || b.used.Load() != 0 {
				t.Fatalf("%d bytes: %v, %d held; want errTooBig, 0 held", n, err, b.used.Load())
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(m.b.Bytes(), msg) {
			t.Fatalf("%d bytes: read back %d bytes", n, m.b.Len())
		}
		if want := bufFor(int64(n)); m.held != want || int64(m.b.Cap()) != want || b.used.Load() != want {
			t.Fatalf("%d bytes: held %d, capacity %d, budget used %d; want %d", n, m.held, m.b.Cap(), b.used.Load(), want)
		}
		b.put(m)
		if b.used.Load() != 0 {
			t.Fatalf("%d bytes: %d held after put", n, b.used.Load())
		}
	}
}

// oneByOne returns at most 1000 bytes per Read, as a socket might.
type oneByOne struct{ r io.Reader }

func (o *oneByOne) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1000)]) }

// TestBudgetWaits: a reader finding the budget exhausted waits for room,
// gets it when a buffer is released, and gives up with errOverloaded when
// none is within the wait.
func TestBudgetWaits(t *testing.T) {
	b := newBuffers(3*minBuf, 200*time.Millisecond)
	ctx := context.Background()
	var held []*msgBuf
	for range 3 {
		m, err := b.get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, m)
	}
	got := make(chan error, 1)
	go func() {
		m, err := b.get(ctx)
		if err == nil {
			b.put(m)
		}
		got <- err
	}()
	b.put(held[0])
	if err := <-got; err != nil {
		t.Fatalf("waiting get: %v, want a buffer once one was released", err)
	}
	m, err := b.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.get(ctx); !errors.Is(err, errOverloaded) {
		t.Fatalf("get with the budget exhausted: %v, want errOverloaded", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.get(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with a cancelled context: %v, want context.Canceled", err)
	}
	for _, m := range append(held[1:], m) {
		b.put(m)
	}
	if n := b.used.Load(); n != 0 {
		t.Fatalf("%d held after every put", n)
	}
}

// TestFreeListBounded: at most a sixteenth of the budget is kept idle.
func TestFreeListBounded(t *testing.T) {
	b := newBuffers(1<<20, time.Second) // 256 buffers; 16 kept
	var ms []*msgBuf
	for range 256 {
		m, err := b.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	for _, m := range ms {
		b.put(m)
	}
	if n := len(b.free); n != 16 {
		t.Fatalf("%d idle buffers kept, want 16", n)
	}
}

// TestQueue: push respects the bound but always takes a message into an
// empty queue; take returns everything queued; drop releases what was not
// taken; close ends take once the queue is empty.
func TestQueue(t *testing.T) {
	q := newQueue()
	f := func(held int64) *msgBuf { return &msgBuf{held: held} }
	if !q.push(f(100), 10) {
		t.Fatal("an empty queue refused a message over the bound")
	}
	if q.push(f(1), 10) {
		t.Fatal("a full queue took another message")
	}
	got, ok := q.take(nil)
	if !ok || len(got) != 1 {
		t.Fatalf("take: %d frames, %v", len(got), ok)
	}
	if q.push(f(1), 10) { // the taken frame still counts until done
		t.Fatalf("pushed while a taken frame of 100 bytes was not done (bytes %d)", q.bytes)
	}
	q.done(100)
	if !q.push(f(4), 10) || !q.push(f(4), 10) || q.push(f(4), 10) {
		t.Fatalf("after done, pushes within the bound of 10 failed or one over it passed (bytes %d)", q.bytes)
	}
	if d := q.drop(); len(d) != 2 || q.bytes != 0 {
		t.Fatalf("drop returned %d frames, left %d bytes", len(d), q.bytes)
	}
	q.close()
	if got, ok := q.take(nil); ok || len(got) != 0 {
		t.Fatalf("take after close: %d frames, %v", len(got), ok)
	}
}
