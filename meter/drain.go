package meter

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Drain waits until the meter has metered everything its topic held when
// Drain was called: until the stored offset of every partition reaches
// that partition's end offset as first read. Stopping edges, then draining,
// then stopping the meter leaves no event recorded and unmetered, which is
// what a one-process deployment (dev) needs to shut down clean. It returns
// an error when ctx ends first, and needs the meter to be running.
func (m *Meter) Drain(ctx context.Context) error {
	ends, err := m.endOffsets(ctx)
	if err != nil {
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		behind, err := m.behind(ctx, ends)
		if err != nil {
			return err
		}
		if behind == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("meter: drain: %d partition(s) not metered to their end: %w", behind, ctx.Err())
		case <-tick.C:
		}
	}
}

// endOffsets returns the end offset of each partition of the topic.
func (m *Meter) endOffsets(ctx context.Context) (map[int32]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(m.cfg.Brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{m.cfg.Topic}})
	if err != nil {
		return nil, fmt.Errorf("meter: drain: metadata: %w", err)
	}
	var reqs []kafka.OffsetRequest
	for _, t := range md.Topics {
		if t.Name == m.cfg.Topic && t.Error == nil {
			for _, p := range t.Partitions {
				reqs = append(reqs, kafka.LastOffsetOf(p.ID))
			}
		}
	}
	if len(reqs) == 0 {
		return nil, nil // no topic yet: nothing to meter
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{m.cfg.Topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("meter: drain: list offsets: %w", err)
	}
	ends := map[int32]int64{}
	for _, po := range res.Topics[m.cfg.Topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("meter: drain: offsets of partition %d: %w", po.Partition, po.Error)
		}
		ends[int32(po.Partition)] = po.LastOffset
	}
	return ends, nil
}

// behind counts the partitions whose stored offset is before its end.
func (m *Meter) behind(ctx context.Context, ends map[int32]int64) (int, error) {
	n := 0
	for p, end := range ends {
		if end <= 0 {
			continue
		}
		next, err := m.store.NextOffset(ctx, m.cfg.GroupID, m.cfg.Topic, p)
		if err != nil {
			return 0, fmt.Errorf("meter: drain: %w", err)
		}
		if next < end {
			n++
		}
	}
	return n, nil
}
