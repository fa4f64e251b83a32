package record

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// drainChunk is how much of a segment the drainer reads and sends at once.
const drainChunk = 8 << 20

// drainLoop is the drainer goroutine: it sends the segments to Kafka in
// order, a chunk at a time, each chunk's partitions concurrently and each
// partition's records in order, retrying until Kafka takes them.
func (s *spool) drainLoop() {
	defer s.wg.Done()
	var buf []byte
	for {
		seg, from, to, ok := s.nextRange()
		if !ok {
			return
		}
		recs, next, err := s.read(seg, from, to, &buf)
		if err != nil {
			// The segment went bad after it was written (a read error or a
			// CRC mismatch): there is no way past it but to skip it.
			s.r.log.Error("record: spool finding: unreadable records skipped", "kind", "spool_unreadable",
				"file", seg.path, "offset", from, "bytes", to-from, "err", err)
			next = to
		}
		tainted, ok := s.send(recs)
		if !ok {
			return // Close gave up; the chunk stays on disk
		}
		if tainted {
			buf = nil // kafka-go may still read it
		}
		s.mu.Lock()
		seg.drained = next
		s.mu.Unlock()
	}
}

// nextRange waits for records to drain and returns the next range of
// synced, undrained bytes. On its way it deletes segments drained whole,
// and when it has caught up with the writer it sends the senders back to
// Kafka. It returns false when the drainer is to stop.
func (s *spool) nextRange() (seg *segment, from, to int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.stopDrain {
		for len(s.segs) > 0 {
			g := s.segs[0]
			if g.drained < g.synced {
				return g, g.drained, g.synced, true
			}
			if g == s.cur {
				break
			}
			s.drop(g)
		}
		switch {
		case !s.diverted:
		case len(s.buf) == 0 && !s.writing:
			// Kafka has everything the spool held, and nothing is being
			// spooled: senders go back to producing directly.
			if s.cur != nil {
				s.drop(s.cur)
				s.cur = nil
			}
			s.diverted, s.handover = false, false
			s.spooling.Store(false)
			s.freed()
			s.r.log.Info("record: spool drained; producing to Kafka directly again", "dir", s.dir)
		default:
			// Caught up but for the groups being written: under steady load
			// there would always be one, so new writes wait for these to
			// drain, then go direct.
			s.handover = true
		}
		s.mu.Unlock()
		<-s.drainWake
		s.mu.Lock()
	}
	return nil, 0, 0, false
}

// drop deletes the drained segment g, the oldest; s.mu is held.
func (s *spool) drop(g *segment) {
	if err := g.remove(); err != nil && !os.IsNotExist(err) {
		s.r.log.Error("record: spool: remove drained segment", "file", g.path, "err", err)
	}
	s.segs = s.segs[1:]
	s.disk -= g.synced
	s.bytes.Store(s.disk)
	s.freed()
}

// read reads whole records of seg from offset from, up to to and at most
// about drainChunk bytes, into *buf; it returns them and the offset after
// the last.
func (s *spool) read(seg *segment, from, to int64, buf *[]byte) ([]spoolRec, int64, error) {
	if seg.rf == nil {
		f, err := os.Open(seg.path)
		if err != nil {
			return nil, from, err
		}
		seg.rf = f
	}
	n := min(to-from, drainChunk)
	for {
		if int64(cap(*buf)) < n {
			*buf = make([]byte, n)
		}
		b := (*buf)[:n]
		if _, err := seg.rf.ReadAt(b, from); err != nil {
			return nil, from, err
		}
		var recs []spoolRec
		off := 0
		for off < len(b) {
			rl, whole, err := recordLen(b[off:])
			if err != nil {
				return nil, from, err
			}
			if !whole || off+rl > len(b) {
				break
			}
			rec, err := parseRecord(b[off : off+rl])
			if err != nil {
				return nil, from, err
			}
			recs = append(recs, rec)
			off += rl
		}
		if off > 0 {
			return recs, from + int64(off), nil
		}
		// The first record is larger than the chunk.
		rl, whole, _ := recordLen(b)
		if !whole || int64(rl) > to-from {
			return nil, from, fmt.Errorf("%w at offset %d", errTorn, from)
		}
		n = int64(rl)
	}
}

// send produces recs, each partition's in order; it reports whether a
// produce ended by its context (tainted: kafka-go may still read the
// buffer), and false once Close has given up.
func (s *spool) send(recs []spoolRec) (tainted, ok bool) {
	byPart := map[int][]kv{}
	var order []int
	for _, rec := range recs {
		if _, seen := byPart[rec.partition]; !seen {
			order = append(order, rec.partition)
		}
		byPart[rec.partition] = append(byPart[rec.partition], kv{key: rec.key, value: rec.value})
	}
	var wg sync.WaitGroup
	var taint, stopped atomic.Bool
	for _, part := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !s.sendPartition(part, byPart[part], &taint) {
				stopped.Store(true)
			}
		}()
	}
	wg.Wait()
	return taint.Load(), !stopped.Load()
}

// sendPartition produces kvs to part in batches, in order.
func (s *spool) sendPartition(part int, kvs []kv, taint *atomic.Bool) bool {
	r := s.r
	for len(kvs) > 0 {
		k, bytes := 0, int64(0)
		for k < len(kvs) && k < r.cfg.BatchSize && (k == 0 || bytes+int64(len(kvs[k].value))+eventOverhead <= r.batchBytes) {
			bytes += int64(len(kvs[k].value)) + eventOverhead
			k++
		}
		if !s.sendBatch(part, kvs[:k], taint) {
			return false
		}
		kvs = kvs[k:]
	}
	return true
}

// sendBatch produces one batch until Kafka takes it, splitting out and
// rejecting records it refuses for good.
func (s *spool) sendBatch(part int, kvs []kv, taint *atomic.Bool) bool {
	r := s.r
	for attempt := 1; ; attempt++ {
		rs := new(recordSet)
		rs.reset(kvs)
		ctx, cancel := context.WithTimeout(r.flushCtx, r.cfg.WriteTimeout)
		o, bad, err := r.kc.produce(ctx, part, rs)
		if ctx.Err() != nil {
			taint.Store(true)
		}
		cancel()
		r.batches.Add(1)
		if o == delivered {
			s.drained.Add(uint64(len(kvs)))
			return true
		}
		r.writeErrors.Add(1)
		if o == refused {
			return s.refused(part, kvs, bad, err, taint)
		}
		r.kc.refresh()
		if r.flushCtx.Err() != nil {
			return false
		}
		if attempt == 1 || attempt%10 == 0 {
			r.log.Warn("record: spool drain failed, retrying", "partition", part, "events", len(kvs), "attempt", attempt, "err", err)
		}
		r.retried.Add(uint64(len(kvs)))
		if !sleep(r.flushCtx, backoff(attempt, r.cfg.RetryBackoffMin, r.cfg.RetryBackoffMax)) {
			return false
		}
	}
}

// refused splits a batch Kafka refused, as partition.refused does; a
// spooled event refused for good was already reported durable, so it can
// only be counted and logged (the meter sees a gap in its stream).
func (s *spool) refused(part int, kvs []kv, bad []int, err error, taint *atomic.Bool) bool {
	if len(kvs) == 1 {
		s.reject(kvs[0], err)
		return true
	}
	if len(bad) == 0 {
		h := len(kvs) / 2
		return s.sendBatch(part, kvs[:h], taint) && s.sendBatch(part, kvs[h:], taint)
	}
	isBad := make(map[int]bool, len(bad))
	for _, i := range bad {
		isBad[i] = true
	}
	from := 0
	for i := range kvs {
		if !isBad[i] {
			continue
		}
		if from < i && !s.sendBatch(part, kvs[from:i], taint) {
			return false
		}
		s.reject(kvs[i], err)
		from = i + 1
	}
	return from == len(kvs) || s.sendBatch(part, kvs[from:], taint)
}

func (s *spool) reject(e kv, err error) {
	s.r.rejected.Add(1)
	var ev event.Event
	seq := uint64(0)
	if event.Decode(e.value, &ev) == nil {
		seq = ev.Seq
	}
	s.r.log.Error("record: Kafka refused a spooled event for good; the meter will see a gap",
		"stream", uuid.UUID(e.key), "seq", seq, "bytes", len(e.value), "err", err)
}
