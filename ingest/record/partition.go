package record

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// partition queues the events of the streams pinned to one Kafka
// partition, and its sender goroutine makes them durable in order, one
// batch at a time: what is queued while a batch is in flight forms the next
// batch, which goes the moment the previous one is durable.
type partition struct {
	r  *Recorder
	id int

	mu      sync.Mutex
	queue   []item
	qbytes  int64
	closing bool
	wake    chan struct{} // the sender has work, or should finish
	full    chan struct{} // the queue holds a whole batch (ends a linger)

	// The sender's own state.
	spare   []item     // a queue buffer not in use
	kvs     []kv       // the records of the batch being produced
	rs      *recordSet // nil after a produce that ended by its context
	tainted bool       // kafka-go may still read this batch's buffers
	handed  bool       // the spool owns (part of) this batch
	linger  *time.Timer
}

func newPartition(r *Recorder, id int) *partition {
	return &partition{r: r, id: id, wake: make(chan struct{}, 1), full: make(chan struct{}, 1)}
}

// push queues it; the caller holds its stream's lock, so a stream's events
// queue in seq order.
func (p *partition) push(it item) {
	p.mu.Lock()
	p.queue = append(p.queue, it)
	p.qbytes += it.size
	n, bytes := len(p.queue), p.qbytes
	p.mu.Unlock()
	if n == 1 {
		signal(p.wake)
	} else if p.r.cfg.BatchLinger > 0 && (n == p.r.cfg.BatchSize || bytes >= p.r.batchBytes) {
		signal(p.full)
	}
}

// close makes the sender finish once its queue is empty.
func (p *partition) close() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	signal(p.wake)
}

// run is the sender goroutine.
func (p *partition) run() {
	defer p.r.senders.Done()
	for {
		batch, ok := p.take()
		if !ok {
			return
		}
		p.tainted, p.handed = false, false
		p.deliver(batch)
		if !p.handed {
			clear(batch)
			p.spare = batch[:0]
		}
	}
}

// take waits for queued events and cuts the next batch from the front of
// the queue; it returns false once the partition is closing and empty.
func (p *partition) take() ([]item, bool) {
	lingered := p.r.cfg.BatchLinger <= 0
	for {
		p.mu.Lock()
		n := len(p.queue)
		if n == 0 {
			closing := p.closing
			p.mu.Unlock()
			if closing {
				return nil, false
			}
			<-p.wake
			continue
		}
		if !lingered && !p.closing && n < p.r.cfg.BatchSize && p.qbytes < p.r.batchBytes {
			p.mu.Unlock()
			p.lingerWait()
			lingered = true
			continue
		}
		batch := p.cut()
		p.mu.Unlock()
		return batch, true
	}
}

// cut takes the longest prefix of the queue that fits a batch; p.mu is
// held.
func (p *partition) cut() []item {
	q := p.queue
	k, bytes := 0, int64(0)
	for k < len(q) && k < p.r.cfg.BatchSize && (k == 0 || bytes+q[k].size <= p.r.batchBytes) {
		bytes += q[k].size
		k++
	}
	if k == len(q) {
		p.queue, p.qbytes = p.spare, 0
	} else {
		p.queue = append(p.spare, q[k:]...)
		p.qbytes -= bytes
	}
	p.spare = nil
	return q[:k]
}

// lingerWait waits BatchLinger for the queue to fill a batch.
func (p *partition) lingerWait() {
	select {
	case <-p.full: // stale
	default:
	}
	if p.linger == nil {
		p.linger = time.NewTimer(p.r.cfg.BatchLinger)
	} else {
		p.linger.Reset(p.r.cfg.BatchLinger)
	}
	select {
	case <-p.linger.C:
		return
	case <-p.full:
	case <-p.wake: // closing
		signal(p.wake)
	}
	p.linger.Stop()
}

// deliver makes items durable, in order: produced to Kafka, or handed to
// the spool (which resolves them once fsynced) when Kafka fails or is slow
// to answer and a spool is configured, or else retried with backoff.
// Records Kafka refuses for good are split out and rejected. It returns
// once every item is resolved or handed over, or given up when Close gave
// up.
func (p *partition) deliver(items []item) {
	r := p.r
	for attempt := 1; ; attempt++ {
		if r.spool != nil {
			err := r.spool.write(p.id, items, p.tainted, nil)
			if err == nil {
				p.handed = true
				return
			}
			if !errors.Is(err, errDirect) {
				if !p.retryAfter(attempt, items, err) {
					return
				}
				continue
			}
		}
		o, bad, err := p.produce(items)
		if o == delivered {
			r.resolve(items, p.tainted, false)
			return
		}
		r.writeErrors.Add(1)
		if o == refused {
			p.refused(items, bad, err)
			return
		}
		r.kc.refresh()
		if r.spool != nil {
			if err := r.spool.write(p.id, items, p.tainted, err); err == nil {
				p.handed = true
				return
			} else if !p.retryAfter(attempt, items, err) {
				return
			}
			continue
		}
		if !p.retryAfter(attempt, items, err) {
			return
		}
	}
}

// retryAfter logs a failed attempt and backs off; it fails the items and
// returns false when Close has given up.
func (p *partition) retryAfter(attempt int, items []item, err error) bool {
	r := p.r
	if r.flushCtx.Err() == nil {
		r.log.Warn("record: write failed, retrying", "partition", p.id, "events", len(items), "attempt", attempt, "err", err)
		r.retried.Add(uint64(len(items)))
		if sleep(r.flushCtx, backoff(attempt, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax)) {
			return true
		}
	}
	r.fail(items)
	return false
}

// produce sends items as one produce request, bounded by SpoolAfter when a
// spool can take over, else by WriteTimeout.
func (p *partition) produce(items []item) (outcome, []int, error) {
	p.kvs = p.kvs[:0]
	for i := range items {
		p.kvs = append(p.kvs, kv{key: items[i].stream.id[:], value: items[i].buf.b})
	}
	if p.rs == nil {
		p.rs = new(recordSet)
	}
	p.rs.reset(p.kvs)
	timeout := p.r.cfg.WriteTimeout
	if p.r.spool != nil {
		timeout = p.r.cfg.SpoolAfter
	}
	ctx, cancel := context.WithTimeout(p.r.flushCtx, timeout)
	start := time.Now()
	o, bad, err := p.r.kc.produce(ctx, p.id, p.rs)
	if ctx.Err() != nil {
		// kafka-go may still encode this request: leave it its buffers.
		p.rs, p.kvs, p.tainted = nil, nil, true
		if o == failed && p.r.flushCtx.Err() == nil {
			err = fmt.Errorf("not acknowledged within %s: %w", timeout, err)
		}
	}
	cancel()
	p.r.batches.Add(1)
	p.r.m.produceSeconds.Observe(time.Since(start).Seconds())
	return o, bad, err
}

// refused handles a batch Kafka refused for good: the records it named,
// or a lone record, are rejected; otherwise the batch is split in two and
// each half delivered, so only the offending records are rejected.
func (p *partition) refused(items []item, bad []int, err error) {
	if len(items) == 1 {
		p.r.reject(items[0], err, p.tainted)
		return
	}
	if len(bad) == 0 {
		h := len(items) / 2
		p.deliver(items[:h])
		p.deliver(items[h:])
		return
	}
	isBad := make(map[int]bool, len(bad))
	for _, i := range bad {
		isBad[i] = true
	}
	from := 0
	for i := range items {
		if !isBad[i] {
			continue
		}
		if from < i {
			p.deliver(items[from:i])
		}
		p.r.reject(items[i], err, p.tainted)
		from = i + 1
	}
	if from < len(items) {
		p.deliver(items[from:])
	}
}
