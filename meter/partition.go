package meter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
)

// partitionWorker meters one assigned partition. It owns the partition's
// stream state for as long as the assignment lasts.
type partitionWorker struct {
	m         *Meter
	partition int
	bl        *builder
	recs      []kafka.Message
}

// runPartition meters partition until ctx ends (nil), the partition is
// fenced by another consumer (an error wrapping ledger.ErrFenced) or stops
// on a record it must not guess about (a *PartitionError). Other failures,
// such as Postgres being unreachable, are retried from the stored offset
// with fresh state.
func (m *Meter) runPartition(ctx context.Context, partition int) error {
	w := &partitionWorker{m: m, partition: partition, bl: newBuilder(m, partition)}
	for {
		err := w.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var pe *PartitionError
		if errors.As(err, &pe) {
			m.log.Error("meter: partition stopped", "topic", pe.Topic, "partition", pe.Partition, "offset", pe.Offset, "err", pe.Err)
			return err
		}
		if errors.Is(err, ledger.ErrFenced) {
			m.log.Warn("meter: partition taken over by another consumer", "partition", partition, "err", err)
			return err
		}
		m.metrics.failures.Inc()
		m.log.Warn("meter: batch failed; retrying from the stored offset", "partition", partition, "err", err)
		w.bl.reset()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(m.cfg.RetryBackoff):
		}
	}
}

// session reads the stored offset and meters from it until an error.
func (w *partitionWorker) session(ctx context.Context) error {
	m := w.m
	from, err := m.store.NextOffset(ctx, m.cfg.GroupID, m.cfg.Topic, w.partition)
	if err != nil {
		return err
	}
	start := from
	if from == ledger.NoOffset {
		start = kafka.FirstOffset
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:       m.cfg.Brokers,
		Topic:         m.cfg.Topic,
		Partition:     w.partition,
		MinBytes:      1,
		MaxBytes:      16 << 20,
		MaxWait:       m.cfg.BatchWait,
		QueueCapacity: min(m.cfg.BatchSize, 10000),
	})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return fmt.Errorf("meter: partition %d: seek to %d: %w", w.partition, start, err)
	}
	m.log.Info("meter: partition assigned", "partition", w.partition, "offset", from)
	// Batch k+1 is fetched and built while batch k commits; batches commit
	// one at a time, in order, each moving the offset from where the one
	// before it ended.
	var inflight chan error // the commit of prev, when one is under way
	var prev *pending
	settle := func() error {
		if inflight == nil {
			return nil
		}
		err := <-inflight
		inflight = nil
		if err == nil {
			w.bl.committed(prev)
		}
		prev = nil
		return err
	}
	defer settle()
	for {
		recs, err := w.fetch(ctx, r)
		if err != nil {
			return fmt.Errorf("meter: partition %d: fetch: %w", w.partition, err)
		}
		p, stop, err := w.build(ctx, from, recs)
		if err != nil {
			return err
		}
		if err := settle(); err != nil {
			return err
		}
		from = p.b.To
		if stop != nil {
			if err := w.commit(ctx, p); err != nil {
				return err
			}
			return stop
		}
		if !worthCommitting(&p.b) {
			continue
		}
		done := make(chan error, 1)
		prev, inflight = p, done
		go func() { done <- w.store(ctx, p) }()
	}
}

// fetch returns the next batch: at least one record, then as many as
// arrive within BatchWait, up to BatchSize.
func (w *partitionWorker) fetch(ctx context.Context, r *kafka.Reader) ([]kafka.Message, error) {
	recs := w.recs[:0]
	first, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	recs = append(recs, first)
	wctx, cancel := context.WithTimeout(ctx, w.m.cfg.BatchWait)
	defer cancel()
	for len(recs) < w.m.cfg.BatchSize {
		msg, err := r.FetchMessage(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if wctx.Err() != nil {
				break
			}
			return nil, err
		}
		recs = append(recs, msg)
	}
	w.recs = recs
	return recs, nil
}

// batch meters recs, starting at the stored offset from, in one
// transaction, and returns the next offset. A record of an unknown schema
// major ends the batch before it and, after the commit, stops the
// partition with a *PartitionError.
func (w *partitionWorker) batch(ctx context.Context, from int64, recs []kafka.Message) (int64, error) {
	p, stop, err := w.build(ctx, from, recs)
	if err != nil {
		return 0, err
	}
	if err := w.commit(ctx, p); err != nil {
		return 0, err
	}
	if stop != nil {
		return 0, stop
	}
	return p.b.To, nil
}

// build meters recs, starting at offset from, into the next batch. A
// record of an unknown schema major ends the batch before it and is
// returned as a *PartitionError.
func (w *partitionWorker) build(ctx context.Context, from int64, recs []kafka.Message) (*pending, *PartitionError, error) {
	m, bl := w.m, w.bl
	bl.begin(from)
	if err := bl.load(ctx, recs); err != nil {
		return nil, nil, err
	}
	p := bl.cur
	var stop *PartitionError
	p.n = len(recs)
	for i := range recs {
		if err := bl.add(ctx, &recs[i]); err != nil {
			if errors.Is(err, event.ErrUnknownMajor) {
				stop = &PartitionError{Topic: m.cfg.Topic, Partition: w.partition, Offset: recs[i].Offset, Err: err}
				p.n = i
				break
			}
			return nil, nil, err
		}
	}
	if worthCommitting(&p.b) {
		bl.finish()
	}
	return p, stop, nil
}

// worthCommitting reports whether b changes anything.
func worthCommitting(b *ledger.Batch) bool { return b.To != b.From || len(b.Streams) > 0 }

// commit writes p, when it changes anything, and makes it the committed
// state.
func (w *partitionWorker) commit(ctx context.Context, p *pending) error {
	if !worthCommitting(&p.b) {
		return nil
	}
	if err := w.store(ctx, p); err != nil {
		return err
	}
	w.bl.committed(p)
	return nil
}

// store commits p to Postgres and counts it. It may run while the next
// batch is built: it reads only p.
func (w *partitionWorker) store(ctx context.Context, p *pending) error {
	m, b := w.m, &p.b
	began := time.Now()
	if err := m.store.Commit(ctx, b); err != nil {
		return fmt.Errorf("meter: partition %d: %w", w.partition, err)
	}
	m.metrics.batchTime.Observe(time.Since(began).Seconds())
	w.observe(p)
	if m.afterCommit != nil {
		m.afterCommit(w.partition, b)
	}
	return nil
}

// observe counts a committed batch in the metrics.
func (w *partitionWorker) observe(p *pending) {
	mt, b := w.m.metrics, &p.b
	mt.batches.Inc()
	mt.events.Add(float64(p.n))
	mt.duplicates.Add(float64(p.dups))
	mt.relays.Add(float64(len(b.Relays)))
	for _, f := range b.Findings {
		mt.findings.WithLabelValues(f.Kind).Inc()
	}
}
