package meter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Run meters until ctx ends, then returns nil. It joins the consumer group
// and meters each partition assigned to it, rejoining after every
// rebalance. When a partition stops on a record it must not guess about,
// Run stops every partition and returns that partition's *PartitionError.
func (m *Meter) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if m.cfg.Chain != nil {
		if err := m.store.EnsureSettlementConfig(ctx, m.cfg.Settlement); err != nil {
			return fmt.Errorf("meter: %w", err)
		}
		settled := make(chan struct{})
		go func() {
			defer close(settled)
			m.runSettler(ctx)
		}()
		defer func() { <-settled }()
		defer cancel(nil)
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:          m.cfg.GroupID,
		Brokers:     m.cfg.Brokers,
		Topics:      []string{m.cfg.Topic},
		StartOffset: kafka.FirstOffset,
		// A killed meter holds its partitions until its session times
		// out; then the group rebalances without waiting longer for it.
		SessionTimeout:    m.cfg.SessionTimeout,
		RebalanceTimeout:  m.cfg.SessionTimeout,
		HeartbeatInterval: m.cfg.SessionTimeout / 3,
		JoinGroupBackoff:  time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			m.log.Warn("meter: consumer group", "group", m.cfg.GroupID, "err", fmt.Sprintf(msg, args...))
		}),
	})
	if err != nil {
		return fmt.Errorf("meter: consumer group: %w", err)
	}
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			m.log.Warn("meter: joining the consumer group", "group", m.cfg.GroupID, "err", err)
			continue
		}
		assigned := gen.Assignments[m.cfg.Topic]
		parts := make([]int, len(assigned))
		for i, a := range assigned {
			parts[i] = a.ID
		}
		m.log.Info("meter: generation", "group", m.cfg.GroupID, "generation", gen.ID, "member", gen.MemberID, "partitions", parts)
		for _, p := range parts {
			gen.Start(func(gctx context.Context) {
				// The worker stops when the generation ends or Run's
				// context does.
				wctx, stop := context.WithCancel(ctx)
				defer stop()
				defer context.AfterFunc(gctx, stop)()
				var pe *PartitionError
				if err := m.runPartition(wctx, int32(p)); errors.As(err, &pe) {
					cancel(pe)
				}
			})
		}
	}
	group.Close() // ends the generation, waits for its partitions, leaves the group
	var pe *PartitionError
	if errors.As(context.Cause(ctx), &pe) {
		return pe
	}
	return nil
}
