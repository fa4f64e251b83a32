package audit

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
)

// span is the part of a partition's log a replay reads: [First, End).
type span struct {
	Partition  int32
	First, End int64
}

// spans returns every partition of topic with its earliest retained
// offset and its end (the offset the next record will get) now: a replay
// reads up to there, so records produced meanwhile are not part of it.
func spans(ctx context.Context, brokers []string, topic string) ([]span, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("audit: kafka metadata: %w", err)
	}
	var reqs []kafka.OffsetRequest
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("audit: kafka metadata of %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("audit: topic %s has no partitions", topic)
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("audit: list offsets: %w", err)
	}
	var out []span
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("audit: list offsets of partition %d: %w", po.Partition, po.Error)
		}
		out = append(out, span{Partition: int32(po.Partition), First: po.FirstOffset, End: po.LastOffset})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out, nil
}

// stallTimeout is how long a replay waits for the next record of a span
// it has not finished reading before it gives up.
const stallTimeout = 30 * time.Second

// read reads sp in batches of up to size records and passes each to fn;
// fn must not keep the slice. Reading runs ahead of fn by a batch.
func read(ctx context.Context, brokers []string, topic string, sp span, size int, fn func([]kafka.Message) error) error {
	if sp.First >= sp.End {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: int(sp.Partition),
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 500 * time.Millisecond, QueueCapacity: 10000})
	defer r.Close()
	if err := r.SetOffset(sp.First); err != nil {
		return fmt.Errorf("audit: partition %d: seek to %d: %w", sp.Partition, sp.First, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Two buffers: one filled while fn handles the other.
	full, free := make(chan []kafka.Message, 1), make(chan []kafka.Message, 2)
	free <- make([]kafka.Message, 0, size)
	free <- make([]kafka.Message, 0, size)
	errc := make(chan error, 1)
	go func() {
		defer close(full)
		next := sp.First
		for next < sp.End {
			var buf []kafka.Message
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			buf = buf[:0]
			for len(buf) < size && next < sp.End {
				fctx, fcancel := context.WithTimeout(ctx, stallTimeout)
				m, err := r.FetchMessage(fctx)
				fcancel()
				if err != nil {
					if ctx.Err() == nil {
						err = fmt.Errorf("audit: partition %d: read at offset %d of [%d, %d): %w", sp.Partition, next, sp.First, sp.End, err)
					}
					errc <- err
					return
				}
				if m.Offset >= sp.End { // the offsets before End were not records
					next = sp.End
					break
				}
				buf = append(buf, m)
				next = m.Offset + 1
			}
			select {
			case full <- buf:
			case <-ctx.Done():
				return
			}
			if next >= sp.End {
				return
			}
		}
	}()
	for buf := range full {
		if err := fn(buf); err != nil {
			return err
		}
		free <- buf
	}
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}
