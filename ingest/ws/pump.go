package ws

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
)

// dir is one direction of a proxied connection: messages read from src,
// recorded, and written to dst, in seq order.
type dir struct {
	p        *proxy
	src, dst *side
	q        *queue // ForwardAfterAck only
	fwdDone  chan struct{}

	// Reused for every message of the direction, by the pump.
	m   event.Message
	sum [32]byte
	lr  io.LimitedReader
	cls classifier
	// n numbers the client's messages for the bookkeeping (toUp, with
	// failover only).
	n uint64
	// order is held from recording a message to handing it on, so that
	// the messages the edge writes itself (inject) keep the direction in
	// seq order.
	order sync.Mutex
	// What the edge does with the message being pumped (checkLimits), and
	// its answer; reused, by the pump.
	verdict verdict
	ans     []byte
	ansMsg  event.Message
	ansSum  [32]byte
	// Reused by the forwarder.
	batch  []*msgBuf
	unsent []sentMark // written through dst's cork, not yet known sent

	// forwarded is the highest seq of this direction written to dst. A
	// direction forwards in seq order, so every message of it up to
	// forwarded crossed and none after it did. Written by the goroutine
	// that forwards, read once run has returned.
	forwarded uint64
}

// pump reads messages from src, records each, then forwards it to dst:
// inline once queued in the recorder (ForwardAfterQueue), or through the
// queue and a forwarder goroutine once durable (ForwardAfterAck).
func (d *dir) pump() {
	defer d.p.wg.Done()
	if d.q != nil {
		d.fwdDone = make(chan struct{})
		go d.forward()
	}
	for {
		f, c, ok := d.next()
		if ok {
			c, ok = d.hand(f)
		}
		if !ok {
			d.end(c)
			return
		}
	}
}

// end stops the direction for c. Frames already queued are still forwarded
// (so a client's last request before its close reaches the upstream),
// unless the connection is ending anyway.
func (d *dir) end(c *cause) {
	if d.q != nil {
		d.q.close()
		<-d.fwdDone
	}
	if c != nil {
		d.p.finish(*c)
	}
}

// hand passes f, recorded, on to dst, or, when the edge absorbed it, to
// the edge's answer (a client message) or nowhere (an upstream message
// the subscriptions' bookkeeping kept back). It releases d.order, which
// next took.
func (d *dir) hand(f *msgBuf) (*cause, bool) {
	if d.verdict != pass {
		d.order.Unlock()
		return d.absorb(f)
	}
	defer d.order.Unlock()
	if f.kind == absorbed {
		d.p.e.bufs.put(f)
		return nil, true
	}
	if d.q != nil {
		return d.enqueue(f)
	}
	return d.writeNow(f)
}

// next reads and records the next message, moving the client to another
// upstream when its upstream is lost and the pool has another; when ok,
// d.order is held. A nil cause with !ok means the connection is ending
// already.
func (d *dir) next() (*msgBuf, *cause, bool) {
	typ, r, err := d.src.conn.Reader(context.Background())
	for moves := 0; err != nil && d.src == &d.p.upstream && d.p.canMove(err); moves++ {
		if moves > 2*len(d.p.rt.pool.members) { // upstreams that drop the client as soon as it comes
			d.p.e.m.failovers.WithLabelValues("failed").Inc()
			return nil, &noUpstreamCause, false
		}
		c, ok := d.p.move(err)
		if !ok {
			return nil, c, false
		}
		typ, r, err = d.src.conn.Reader(context.Background())
	}
	if err != nil {
		c := d.p.lost(d.src, err)
		return nil, &c, false
	}
	cfg := &d.p.e.cfg
	f, err := d.p.e.bufs.read(d.p.ctx, r, cfg.MaxMessageSize, &d.lr)
	if err != nil {
		return nil, d.p.readFailed(d.src, err), false
	}
	f.typ = typ
	if d.p.subs != nil && typ == websocket.MessageText && d.src == &d.p.upstream && !d.fromUpstream(f) {
		d.p.e.bufs.put(f)
		return nil, nil, false
	}
	d.order.Lock()
	if f.seq, err = d.record(f); err != nil {
		d.order.Unlock()
		d.p.e.bufs.put(f)
		if errors.Is(err, errBatchTooLarge) {
			return nil, d.p.readFailed(d.src, err), false
		}
		if d.p.ending.Load() {
			return nil, nil, false
		}
		d.p.e.log.Error("ws: record", "stream", d.p.stream.ID(), "err", err)
		return nil, &recorderFailedCause, false
	}
	if d.p.subs != nil && !d.p.movedAt.IsZero() && d.src == &d.p.upstream && f.kind == fromPeer && d.m.Role == event.Role_NOTIFICATION {
		d.p.e.m.failoverSeconds.Observe(time.Since(d.p.movedAt).Seconds())
		d.p.movedAt = time.Time{}
	}
	return f, nil, true
}

// record classifies f's message, read from d's source side, decides what
// the edge does with it (the limits, then, with a pool, the subscriptions'
// bookkeeping), appends it to the stream and returns its seq.
func (d *dir) record(f *msgBuf) (uint64, error) {
	m := &d.m
	if err := d.p.classifyMessage(m, &d.cls, d.src.dir, f); err != nil {
		return 0, err
	}
	d.checkLimits(m)
	if d.verdict == pass && d.src == &d.p.client {
		d.checkSubscriptions(m, f)
	}
	if f.kind == absorbed {
		m.AbsorbedByEdge = true
	}
	return d.p.appendMessage(m, &d.sum, f)
}

// classifyMessage fills m for f's payload, a message of direction dir,
// classified with cls.
func (p *proxy) classifyMessage(m *event.Message, cls *classifier, dir event.Direction, f *msgBuf) error {
	payload := f.b.Bytes()
	m.Reset()
	m.Direction = dir
	m.WireSize, m.PayloadSize = uint64(len(payload)), uint64(len(payload))
	m.Binary = f.typ == websocket.MessageBinary
	return cls.classify(m, payload, &p.pending)
}

// appendMessage appends m, classified from f's payload, to the stream and
// returns its seq.
func (p *proxy) appendMessage(m *event.Message, sum *[32]byte, f *msgBuf) (uint64, error) {
	m.Payload, *sum = record.Payload(p.capture, f.b.Bytes())
	m.PayloadSha256 = sum[:]
	seq, err := p.stream.Append(p.ctx, m)
	if errors.Is(err, record.ErrEventTooLarge) {
		// A huge batch's method list with a large capture: keep the
		// metering fields, drop the captured bytes (sha256 remains).
		m.Payload = nil
		seq, err = p.stream.Append(p.ctx, m)
	}
	return seq, err
}

// write writes f to dst: toward an upstream that can change, to the one of
// the moment (failover.go).
func (d *dir) write(f *msgBuf) error {
	if d.p.subs != nil && d.dst == &d.p.upstream {
		return d.p.writeUpstream(f)
	}
	return d.dst.write(f)
}

// writeNow writes f to dst at once (ForwardAfterQueue).
func (d *dir) writeNow(f *msgBuf) (*cause, bool) {
	err := d.write(f)
	seq := f.seq
	d.p.e.bufs.put(f)
	if err != nil {
		c := d.p.lost(d.dst, err)
		return &c, false
	}
	d.forwarded = seq
	d.src.counter.Inc()
	return nil, true
}

// enqueue hands f to the forwarder, within the direction's byte bound. A
// full queue holds the pump, in either direction: toward the upstream that
// is back-pressure on the client; toward the client a full queue is also
// what a burst or a slow broker looks like, so a client is judged by its
// writes instead: one that does not take a write within the write timeout
// is closed for not reading (side.write), which empties the queue.
func (d *dir) enqueue(f *msgBuf) (*cause, bool) {
	for !d.q.push(f, d.p.e.cfg.QueueBytes) {
		select {
		case <-d.q.room:
		case <-d.p.ctx.Done():
			d.p.e.bufs.put(f)
			return nil, false
		}
	}
	d.src.counter.Inc()
	return nil, true
}

// forward writes the queued frames to dst in order, each once its event is
// durable, until the queue is closed and empty. After a failure it only
// releases what it takes.
func (d *dir) forward() {
	defer close(d.fwdDone)
	failed := false
	for {
		batch, ok := d.q.take(d.batch[:0])
		if !ok {
			return
		}
		if !failed {
			failed = !d.forwardRun(batch)
		}
		for i, f := range batch {
			d.q.done(f.held)
			d.p.e.bufs.put(f)
			batch[i] = nil
		}
		d.batch = batch
	}
}

// forwardRun writes batch to dst in order, each frame once its event is
// durable. When more than one frame is ready, their writes are held back
// (corkConn) and sent with one write, flushed before the forwarder waits
// for durability or for more frames; a lone frame is written as it is. It
// reports whether the direction may go on.
func (d *dir) forwardRun(batch []*msgBuf) bool {
	for i, f := range batch {
		if d.dst.cork != nil && d.dst.cork.holding() && !durableNow(d.p.stream, f.seq) && !d.flush() {
			return false
		}
		if err := d.p.stream.WaitDurable(d.p.ctx, f.seq); err != nil {
			d.flush() // before finish: its close frames must not wait behind held writes
			if errors.Is(err, record.ErrRejected) {
				d.p.e.log.Error("ws: event rejected", "stream", d.p.stream.ID(), "seq", f.seq, "err", err)
				d.p.finish(rejectedCause)
			}
			return false
		}
		if d.dst.cork != nil && i+1 < len(batch) {
			d.dst.cork.cork() // another frame follows: write them together
		}
		if err := d.write(f); err != nil {
			d.flush()
			d.p.finish(d.p.lost(d.dst, err))
			return false
		}
		d.wrote(f.seq)
	}
	return d.flush()
}

// wrote notes that the frame seq was written: crossed at once without a
// cork, else once the bytes up to its end have been sent.
func (d *dir) wrote(seq uint64) {
	if d.dst.cork == nil {
		d.forwarded = seq
		return
	}
	end, _ := d.dst.cork.counts()
	d.unsent = append(d.unsent, sentMark{seq: seq, end: end})
}

// doneCtx is cancelled: WaitDurable with it reports, without waiting,
// whether an event is durable already.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func durableNow(s *record.Stream, seq uint64) bool { return s.WaitDurable(doneCtx, seq) == nil }

// sentMark is a frame written through a cork: seq crossed once the
// connection has sent end bytes.
type sentMark struct{ seq, end uint64 }

// flush sends the writes held back and advances forwarded over the frames
// whose bytes were sent, all of them unless the flush failed.
func (d *dir) flush() bool {
	err := d.dst.flush()
	if d.dst.cork != nil {
		_, sent := d.dst.cork.counts()
		n := 0
		for _, m := range d.unsent {
			if m.end > sent {
				break
			}
			d.forwarded = m.seq
			n++
		}
		d.unsent = append(d.unsent[:0], d.unsent[n:]...)
	}
	if err != nil {
		d.p.finish(d.p.lost(d.dst, err))
		return false
	}
	return true
}
