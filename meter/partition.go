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
	n         int // records of the current batch metered
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
	for {
		recs, err := w.fetch(ctx, r)
		if err != nil {
			return fmt.Errorf("meter: partition %d: fetch: %w", w.partition, err)
		}
		next, err := w.batch(ctx, from, recs)
		if err != nil {
			return err
		}
		from = next
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
	m, bl := w.m, w.bl
	bl.begin(from)
	if err := bl.load(ctx, recs); err != nil {
		return 0, err
	}
	var stop *PartitionError
	w.n = len(recs)
	for i := range recs {
		if err := bl.add(ctx, &recs[i]); err != nil {
			if errors.Is(err, event.ErrUnknownMajor) {
				stop = &PartitionError{Topic: m.cfg.Topic, Partition: w.partition, Offset: recs[i].Offset, Err: err}
				w.n = i
				break
			}
			return 0, err
		}
	}
	b := &bl.b
	if b.To != b.From || len(b.Streams) > 0 {
		bl.finish()
		began := time.Now()
		if err := m.store.Commit(ctx, b); err != nil {
			return 0, fmt.Errorf("meter: partition %d: %w", w.partition, err)
		}
		m.metrics.batchTime.Observe(time.Since(began).Seconds())
		bl.committed()
		w.observe(b)
		if m.afterCommit != nil {
			m.afterCommit(w.partition, b)
		}
	}
	if stop != nil {
		return 0, stop
	}
	return b.To, nil
}

// observe counts a committed batch in the metrics.
func (w *partitionWorker) observe(b *ledger.Batch) {
	mt := w.m.metrics
	mt.batches.Inc()
	mt.events.Add(float64(w.n))
	mt.duplicates.Add(float64(w.bl.dups))
	mt.relays.Add(float64(len(b.Relays)))
	for _, f := range b.Findings {
		mt.findings.WithLabelValues(f.Kind).Inc()
	}
}
