package record

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// ErrSpoolLocked reports a spool directory in use by another recorder.
var ErrSpoolLocked = errors.New("record: spool directory locked by another recorder")

// errDirect tells a sender that the spool is not in use: produce directly.
var errDirect = errors.New("record: spool not in use")

// spool is the local, append-only store of events Kafka has not taken yet:
// segment files under Config.SpoolDir. Senders divert a batch here when a
// produce fails or is slow, and while the spool holds anything not yet
// drained, every sender appends here too, behind it, without waiting for
// the fsync. One writer goroutine group-commits what senders hand it (one
// write and one fdatasync per group; what arrives during an fsync forms
// the next group) and resolves the group's events, and one
// drainer produces the segments to Kafka in order, deleting each once all of
// it is acknowledged, and hands the senders back to Kafka once it has
// caught up with the writer.
type spool struct {
	r        *Recorder
	dir      string
	lock     *os.File
	max      int64 // Config.SpoolMaxBytes
	segBytes int64 // Config.SpoolSegmentBytes

	mu           sync.Mutex
	diverted     bool       // senders append here (the spool's mode)
	handover     bool       // the drainer has caught up: new writes wait to go direct
	segs         []*segment // oldest first; the last may be cur
	cur          *segment   // the segment being appended to, nil if none
	nextID       uint64
	buf          []byte         // the group being formed
	batches      []spooledBatch // the senders' batches in buf
	spare        []byte
	spareBatches []spooledBatch
	writing      bool  // a group is being written and synced
	disk         int64 // bytes in segment files, the group being written included
	room         chan struct{}
	stopDrain    bool
	stopWriter   bool

	wake      chan struct{} // the writer has a group, or should stop
	drainWake chan struct{} // the drainer has data, or should stop
	wg        sync.WaitGroup

	// For Stats and metrics.
	spooled, drained, fsyncs atomic.Uint64
	spooling                 atomic.Bool
	bytes                    atomic.Int64
}

// openSpool locks the spool directory and takes stock of the segments an
// earlier recorder left, truncating a torn or corrupt tail.
func openSpool(r *Recorder) (*spool, error) {
	s := &spool{
		r: r, dir: r.cfg.SpoolDir, max: r.cfg.SpoolMaxBytes, segBytes: r.cfg.SpoolSegmentBytes,
		room: make(chan struct{}), wake: make(chan struct{}, 1), drainWake: make(chan struct{}, 1), nextID: 1,
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("record: spool dir: %w", err)
	}
	lock, err := lockDir(s.dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.load(); err != nil {
		s.unlock()
		return nil, err
	}
	return s, nil
}

// load adopts the segments found in the directory, and the files of
// recorders from before segments.
func (s *spool) load() error {
	ids, err := listSegments(s.dir)
	if err != nil {
		return fmt.Errorf("record: spool dir: %w", err)
	}
	if len(ids) > 0 {
		s.nextID = ids[len(ids)-1] + 1
	}
	if err := s.adoptLegacy(); err != nil {
		return err
	}
	ids, err = listSegments(s.dir)
	if err != nil {
		return fmt.Errorf("record: spool dir: %w", err)
	}
	for _, id := range ids {
		s.nextID = id + 1
		path := segPath(s.dir, id)
		valid, size, why, err := scanSegment(path)
		if err != nil {
			return fmt.Errorf("record: spool: read %s: %w", path, err)
		}
		if valid < size {
			// Events in a torn tail were never reported durable: their
			// group's fsync had not returned.
			s.r.log.Warn("record: spool finding: truncating a torn tail", "kind", "spool_torn_tail",
				"file", path, "offset", valid, "bytes", size-valid, "detail", why.Error())
			if err := os.Truncate(path, valid); err != nil {
				return fmt.Errorf("record: spool: truncate %s: %w", path, err)
			}
		}
		if valid == 0 {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("record: spool: %w", err)
			}
			continue
		}
		s.segs = append(s.segs, &segment{id: id, path: path, synced: valid, sealed: true})
		s.disk += valid
	}
	s.bytes.Store(s.disk)
	if len(s.segs) > 0 {
		s.r.log.Info("record: spool holds events of an earlier run; sending them to Kafka",
			"dir", s.dir, "segments", len(s.segs), "bytes", s.disk)
	}
	return nil
}

func (s *spool) start() {
	s.wg.Add(2)
	go s.writeLoop()
	go s.drainLoop()
}

func (s *spool) unlock() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

// write appends items, the next events of partition part, to the group
// being formed, and hands them to the writer, which resolves them (durable)
// once the group is on disk; the caller must not reuse items. Order is the
// order of the calls: a sender may write its next batch before the last
// one's fsync returned. With cause nil it does so only while senders are
// diverted here, and returns errDirect otherwise; with a cause (why Kafka
// did not take them) it diverts every sender here. It waits while the
// spool is full, until the drainer frees room or Close gives up, and while
// the drainer hands the senders back to Kafka.
func (s *spool) write(part int, items []item, tainted bool, cause error) error {
	need := int64(0)
	for i := range items {
		need += int64(recHeader + recFixed + len(items[i].buf.b))
	}
	s.mu.Lock()
	for {
		if !s.diverted && cause == nil {
			s.mu.Unlock()
			return errDirect
		}
		used := s.disk + int64(len(s.buf))
		if (used+need <= s.max || used == 0) && (!s.handover || cause != nil) {
			break
		}
		room := s.room
		s.mu.Unlock()
		select {
		case <-room:
		case <-s.r.flushCtx.Done():
			return fmt.Errorf("record: spool full (%d bytes): %w", s.max, context.Cause(s.r.flushCtx))
		}
		s.mu.Lock()
	}
	if cause != nil {
		s.handover = false // Kafka fails again
	}
	if !s.diverted {
		s.diverted = true
		s.spooling.Store(true)
		s.r.log.Warn("record: Kafka is not taking events; spooling them", "dir", s.dir, "err", cause)
	}
	for i := range items {
		s.buf = appendRecord(s.buf, part, items[i].stream.id[:], items[i].buf.b)
	}
	s.batches = append(s.batches, spooledBatch{items: items, tainted: tainted})
	s.mu.Unlock()
	signal(s.wake)
	return nil
}

// spooledBatch is a sender's batch in the group being formed.
type spooledBatch struct {
	items   []item
	tainted bool // kafka-go may still read the items' buffers
}

// writeLoop is the writer goroutine: it writes and syncs one group at a
// time, then resolves the group's events.
func (s *spool) writeLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for len(s.buf) == 0 {
			if s.stopWriter {
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		buf, batches := s.buf, s.batches
		s.buf, s.spare, s.batches, s.spareBatches = s.spare[:0], nil, s.spareBatches[:0], nil
		s.writing = true
		s.disk += int64(len(buf))
		s.mu.Unlock()

		ok := s.commitGroup(buf, batches)

		s.mu.Lock()
		s.writing = false
		if !ok {
			s.disk -= int64(len(buf))
			s.bytes.Store(s.disk)
			s.freed()
		}
		s.spare = buf[:0]
		clear(batches)
		s.spareBatches = batches[:0]
		s.mu.Unlock()
		signal(s.drainWake)
	}
}

// commitGroup writes and syncs one group, retrying in a new segment after
// an error, and resolves its events; it fails them, and returns false,
// once Close has given up.
func (s *spool) commitGroup(buf []byte, batches []spooledBatch) bool {
	events := 0
	for _, b := range batches {
		events += len(b.items)
	}
	for attempt := 1; ; attempt++ {
		s.mu.Lock()
		seg := s.cur
		s.mu.Unlock()
		err := s.commit(&seg, buf)
		s.mu.Lock()
		s.committed(seg, int64(len(buf)), events, err)
		s.mu.Unlock()
		if err == nil {
			break
		}
		s.r.log.Error("record: spool write failed; retrying in a new segment", "dir", s.dir, "attempt", attempt, "err", err)
		if !sleep(s.r.flushCtx, backoff(attempt, s.r.cfg.RetryBackoffMin, s.r.cfg.RetryBackoffMax)) {
			for _, b := range batches {
				s.r.fail(b.items)
			}
			return false
		}
	}
	for _, b := range batches {
		s.r.resolve(b.items, b.tainted, true)
	}
	return true
}

// commit writes buf to *seg, creating a segment when there is none.
func (s *spool) commit(seg **segment, buf []byte) error {
	if *seg == nil {
		g, err := createSegment(s.dir, s.nextID)
		if err != nil {
			return fmt.Errorf("record: spool: new segment: %w", err)
		}
		s.nextID++
		*seg = g
	}
	if err := (*seg).appendSync(buf); err != nil {
		return fmt.Errorf("record: spool: write %s: %w", (*seg).path, err)
	}
	return nil
}

// committed updates the spool after a group commit to seg of n bytes
// holding events events, or its failure; s.mu is held.
func (s *spool) committed(seg *segment, n int64, events int, err error) {
	if err != nil {
		if seg != nil {
			// What was written of the group is not durable: cut it off;
			// the next attempt goes to a new segment.
			_ = os.Truncate(seg.path, seg.synced)
			seg.seal()
			if seg == s.cur {
				s.cur = nil
			} else if seg.synced == 0 {
				_ = os.Remove(seg.path)
			}
		}
		return
	}
	if s.cur == nil {
		s.cur = seg
		s.segs = append(s.segs, seg)
	}
	seg.synced += n
	s.spooled.Add(uint64(events))
	s.fsyncs.Add(1)
	if seg.synced >= s.segBytes {
		seg.seal()
		s.cur = nil
	}
	s.bytes.Store(s.disk)
}

// freed wakes writers waiting for room; s.mu is held.
func (s *spool) freed() {
	close(s.room)
	s.room = make(chan struct{})
}

// close waits until the drainer has emptied the spool or ctx ends, then
// stops the writer and the drainer and unlocks the directory; what is
// left stays for the next recorder. The senders have finished.
func (s *spool) close(ctx context.Context) error {
	s.mu.Lock()
	for ctx.Err() == nil && (s.disk > 0 || len(s.buf) > 0 || s.writing) {
		room := s.room
		s.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
		}
		s.mu.Lock()
	}
	s.stopDrain, s.stopWriter = true, true
	s.mu.Unlock()
	signal(s.wake)
	signal(s.drainWake)
	s.wg.Wait()
	for _, g := range s.segs {
		g.seal()
		if g.rf != nil {
			g.rf.Close()
			g.rf = nil
		}
	}
	if s.disk > 0 {
		s.r.log.Warn("record: spool keeps events for the next start", "dir", s.dir, "segments", len(s.segs), "bytes", s.disk)
	}
	s.unlock()
	return nil
}
