package record

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
)

// eventOverhead is what a record costs beyond its value, as kafka-go counts
// batch bytes (key, lengths, timestamp), rounded up.
const eventOverhead = 64

// item is one queued record value.
type item struct {
	key    *uuid.UUID
	buf    *valueBuf
	size   int64
	stream *Stream // nil for events re-sent from the spool
	seq    uint64
}

// run is the single writer goroutine: it takes batches from the queue and
// writes each until the broker acknowledges every event of it, before taking
// the next. It returns once the input is done and the queue drained, or the
// flush context ends.
func (r *Recorder) run() {
	defer close(r.done)
	defer r.closeSpool()
	items := make([]item, 0, r.cfg.BatchSize)
	msgs := make([]kafka.Message, 0, r.cfg.BatchSize)
	r.resend(msgs)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		items = items[:0]
		var bytes int64
		add := func(it item) { items = append(items, it); bytes += it.size }
		full := func() bool { return len(items) >= r.cfg.BatchSize }
		// The first event: wait for it unless the input is done.
		select {
		case it := <-r.queue:
			add(it)
		case <-r.inputDone:
			select {
			case it := <-r.queue:
				add(it)
			default:
				return
			}
		}
		// Fill the batch with what is queued, lingering for more while the
		// input is open.
		lingering := false
	fill:
		for !full() {
			select {
			case it := <-r.queue:
				if bytes+it.size > r.cfg.BatchBytes {
					r.write(items, msgs)
					items, bytes = items[:0], 0
				}
				add(it)
				continue
			default:
			}
			if r.cfg.BatchTimeout <= 0 || isDone(r.inputDone) {
				break
			}
			if !lingering {
				linger.Reset(r.cfg.BatchTimeout)
				lingering = true
			}
			select {
			case it := <-r.queue:
				if bytes+it.size > r.cfg.BatchBytes {
					r.write(items, msgs)
					items, bytes = items[:0], 0
				}
				add(it)
			case <-linger.C:
				lingering = false
				break fill
			case <-r.inputDone:
			}
		}
		if lingering && !linger.Stop() {
			<-linger.C
		}
		r.write(items, msgs)
		if r.flushCtx.Err() != nil {
			// Close gave up: count what is left as failed.
			for {
				select {
				case it := <-r.queue:
					r.drop([]item{it})
				default:
					return
				}
			}
		}
	}
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// write produces items, retrying the failed ones with backoff until all are
// acknowledged or the flush context ends. Messages that failed keep their
// order, and only a failed partition's messages are retried, so a stream's
// events reach its partition in seq order.
func (r *Recorder) write(items []item, msgs []kafka.Message) {
	if len(items) == 0 {
		return
	}
	msgs = msgs[:0]
	for _, it := range items {
		msgs = append(msgs, kafka.Message{Key: it.key[:], Value: it.buf.b})
	}
	pending := items
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			r.retried.Add(uint64(len(pending)))
			if !r.sleep(backoff(attempt, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax)) {
				r.drop(pending)
				return
			}
		}
		r.batches.Add(1)
		err := r.w.WriteMessages(r.flushCtx, msgs...)
		if err == nil {
			r.ack(pending)
			return
		}
		r.writeErrors.Add(1)
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(msgs) {
			// Keep the failed ones, in order; acknowledge the rest.
			n := 0
			var first error
			for i := range msgs {
				if werrs[i] == nil {
					r.ack(pending[i : i+1])
					continue
				}
				if first == nil {
					first = werrs[i]
				}
				pending[n], msgs[n] = pending[i], msgs[i]
				n++
			}
			pending, msgs = pending[:n], msgs[:n]
			err = first
		}
		if r.flushCtx.Err() != nil {
			r.drop(pending)
			return
		}
		r.log.Warn("record: write failed, retrying", "events", len(pending), "attempt", attempt+1, "err", err)
	}
}

// ack releases acknowledged items.
func (r *Recorder) ack(items []item) {
	for _, it := range items {
		r.budget.release(it.size)
		r.putBuf(it.buf)
		if it.stream != nil {
			it.stream.acked(it.seq)
		}
	}
	r.written.Add(uint64(len(items)))
	r.buffered.Add(-int64(len(items)))
}

// drop spools items given up, or counts them as failed. Their buffers are not reused: the
// Kafka writer may still hold them.
func (r *Recorder) drop(items []item) {
	if len(items) == 0 {
		return
	}
	for _, it := range items {
		r.budget.release(it.size)
	}
	r.buffered.Add(-int64(len(items)))
	if r.cfg.SpoolDir != "" && r.spool(items) {
		r.spooled.Add(uint64(len(items)))
		return
	}
	r.failed.Add(uint64(len(items)))
	r.log.Error("record: events not delivered", "events", len(items))
}

// sleep waits d unless the flush context ends first; it reports whether it
// slept the whole time.
func (r *Recorder) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.flushCtx.Done():
		return false
	}
}

// backoff is min·2^(attempt-1), capped at max.
func backoff(attempt int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// budget is a byte budget with blocking acquisition.
type budget struct {
	mu    sync.Mutex
	max   int64
	avail int64
	// wake is closed and replaced on a release while someone waits.
	wake    chan struct{}
	waiting bool
}

func newBudget(max int64) *budget {
	return &budget{max: max, avail: max, wake: make(chan struct{})}
}

// acquire takes n bytes, waiting for releases until ctx ends or abort is
// closed. A request larger than the whole budget is granted when the budget
// is untouched.
func (b *budget) acquire(ctx context.Context, abort <-chan struct{}, n int64) error {
	for {
		b.mu.Lock()
		if b.avail >= n || b.avail == b.max {
			b.avail -= n
			b.mu.Unlock()
			return nil
		}
		b.waiting = true
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-abort:
			return ErrClosed
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.avail += n
	if b.waiting {
		close(b.wake)
		b.wake = make(chan struct{})
		b.waiting = false
	}
	b.mu.Unlock()
}
