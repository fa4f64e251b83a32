package ws

import "sync"

// queue holds one direction's recorded messages between the pump that read
// them and the forwarder that writes them once durable (ForwardAfterAck),
// in seq order. Its bytes count the buffers of the messages queued and of
// those the forwarder has taken and not yet released.
type queue struct {
	mu     sync.Mutex
	frames []*msgBuf
	bytes  int64
	closed bool          // the pump adds no more
	ready  chan struct{} // 1-buffered: frames were added, or the queue closed
	room   chan struct{} // 1-buffered: bytes went down
}

func newQueue() *queue {
	return &queue{ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push adds f if it fits within bound bytes (an empty queue takes any
// message), reporting whether it did. A closed queue takes nothing: its
// connection is ending.
func (q *queue) push(f *msgBuf, bound int64) bool {
	q.mu.Lock()
	ok := !q.closed && (q.bytes == 0 || q.bytes+f.held <= bound)
	if ok {
		q.frames = append(q.frames, f)
		q.bytes += f.held
	}
	q.mu.Unlock()
	if ok {
		signal(q.ready)
	}
	return ok
}

// take waits for frames and moves them all to into, returning it; ok is
// false once the queue is closed and empty.
func (q *queue) take(into []*msgBuf) (_ []*msgBuf, ok bool) {
	for {
		q.mu.Lock()
		if len(q.frames) > 0 {
			into = append(into, q.frames...)
			clear(q.frames)
			q.frames = q.frames[:0]
			q.mu.Unlock()
			return into, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return into, false
		}
		<-q.ready
	}
}

// done accounts n bytes of a taken frame as released.
func (q *queue) done(n int64) {
	q.mu.Lock()
	q.bytes -= n
	q.mu.Unlock()
	signal(q.room)
}

// close tells the forwarder no more frames come.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	signal(q.ready)
}

// drop removes the frames not yet taken and returns them, for release.
func (q *queue) drop() []*msgBuf {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.frames
	q.frames = nil
	for _, f := range out {
		q.bytes -= f.held
	}
	return out
}
