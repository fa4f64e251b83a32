package meter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/chain"
	"github.com/relaymeter/relaymeter/ledger"
)

// Chain is the chain the settler cuts session windows from (chain.Clock,
// chain.CometBFT).
type Chain interface {
	// Head returns the latest block.
	Head(ctx context.Context) (chain.Block, error)
	// Block returns the block at height (chain.ErrNoBlock when there is
	// none).
	Block(ctx context.Context, height int64) (chain.Block, error)
}

// heightAter is a chain that can tell the height at a time without
// searching (chain.Clock).
type heightAter interface {
	HeightAt(t time.Time) int64
}

// Defaults of the settlement.
const (
	DefaultSessionBlocks = 10
	DefaultGraceBlocks   = 1
	DefaultBlockTime     = time.Minute
)

// maxWindowsPerTick bounds the windows the settler adds to chain_sessions
// at a time, so that a chain far ahead is followed in steps.
const maxWindowsPerTick = 1000

// settler settles the session windows of the meter's chain: it keeps
// chain_sessions current and settles each window once it is over.
type settler struct {
	m     *Meter
	chain Chain
	cfg   ledger.SettlementConfig
	// partitions caches the topic's partition count.
	partitions     int
	partitionsRead time.Time
}

// runSettler settles windows every SettleInterval until ctx ends; any meter
// may run one, the ledger serializes them.
func (m *Meter) runSettler(ctx context.Context) {
	st := &settler{m: m, chain: m.cfg.Chain, cfg: m.cfg.Settlement}
	t := time.NewTicker(m.cfg.SettleInterval)
	defer t.Stop()
	for {
		if err := st.tick(ctx); err != nil && ctx.Err() == nil {
			m.metrics.settleFailures.Inc()
			m.log.Warn("meter: settlement", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick follows the chain and settles every window that is over.
func (st *settler) tick(ctx context.Context) error {
	head, err := st.chain.Head(ctx)
	if errors.Is(err, chain.ErrNoBlock) {
		return nil // before genesis
	}
	if err != nil {
		return fmt.Errorf("meter: chain head: %w", err)
	}
	if err := st.follow(ctx, head); err != nil {
		return err
	}
	parts, err := st.partitionCount(ctx)
	if err != nil {
		return err
	}
	m := st.m
	for ctx.Err() == nil {
		res, done, err := m.store.SettleNext(ctx, ledger.SettleParams{Group: m.cfg.GroupID, Topic: m.cfg.Topic,
			Partitions: parts, Delay: time.Duration(st.cfg.GraceBlocks) * st.cfg.BlockTime,
			Head: head.Height, GraceBlocks: st.cfg.GraceBlocks})
		if err != nil || !done {
			return err
		}
		m.metrics.settled.Inc()
		m.log.Info("meter: settled window", "start_height", res.Window.StartHeight, "end_height", res.Window.EndHeight,
			"sessions", res.Sessions, "transactions", res.Transactions, "late_relays", res.LateRelays)
	}
	return nil
}

// follow adds to chain_sessions the windows up to the head's, and the end
// of each window once the block after it exists. The first window is the
// one of the earliest message stored (nothing to settle before one is).
func (st *settler) follow(ctx context.Context, head chain.Block) error {
	store, n := st.m.store, st.cfg.SessionBlocks
	last, ok, err := store.LastChainSession(ctx)
	if err != nil {
		return err
	}
	var next chain.Window
	if ok {
		if !last.EndsAt.Valid {
			if head.Height <= last.EndHeight {
				return nil
			}
			b, err := st.chain.Block(ctx, last.EndHeight+1)
			if err != nil {
				return fmt.Errorf("meter: chain block %d: %w", last.EndHeight+1, err)
			}
			if err := store.EndChainSession(ctx, last.StartHeight, b.Time); err != nil {
				return err
			}
		}
		next = chain.Window{Start: last.StartHeight, End: last.EndHeight}.Next()
	} else {
		t, any, err := store.EarliestMessage(ctx)
		if err != nil || !any {
			return err
		}
		next = chain.WindowOf(st.heightAt(ctx, t, head), n)
	}
	for i := 0; i < maxWindowsPerTick && next.Start <= head.Height; i++ {
		b, err := st.chain.Block(ctx, next.Start)
		if err != nil {
			return fmt.Errorf("meter: chain block %d: %w", next.Start, err)
		}
		c := ledger.ChainSession{StartHeight: next.Start, EndHeight: next.End, StartsAt: b.Time, StartHash: b.Hash}
		if next.End < head.Height {
			e, err := st.chain.Block(ctx, next.End+1)
			if err != nil {
				return fmt.Errorf("meter: chain block %d: %w", next.End+1, err)
			}
			c.EndsAt = some(e.Time)
		}
		if err := store.AddChainSession(ctx, c); err != nil {
			return err
		}
		if !c.EndsAt.Valid {
			break
		}
		next = next.Next()
	}
	return nil
}

// heightAt returns the height in progress at t, at most the head's: by
// arithmetic for a clock, else by binary search over block times (the
// head's when the chain cannot tell, e.g. old blocks pruned).
func (st *settler) heightAt(ctx context.Context, t time.Time, head chain.Block) int64 {
	if c, ok := st.chain.(heightAter); ok {
		return min(max(c.HeightAt(t), 1), head.Height)
	}
	lo, hi := int64(1), head.Height
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		b, err := st.chain.Block(ctx, mid)
		if err != nil {
			return head.Height
		}
		if b.Time.After(t) {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return lo
}

// partitionCount returns the topic's partition count from Kafka's
// metadata, read again every minute.
func (st *settler) partitionCount(ctx context.Context) (int, error) {
	if st.partitions > 0 && time.Since(st.partitionsRead) < time.Minute {
		return st.partitions, nil
	}
	m := st.m
	client := &kafka.Client{Addr: kafka.TCP(m.cfg.Brokers...), Timeout: 10 * time.Second}
	res, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{m.cfg.Topic}})
	if err != nil {
		return 0, fmt.Errorf("meter: topic metadata: %w", err)
	}
	for _, t := range res.Topics {
		if t.Name == m.cfg.Topic && t.Error == nil && len(t.Partitions) > 0 {
			st.partitions, st.partitionsRead = len(t.Partitions), time.Now()
			return st.partitions, nil
		}
	}
	return 0, fmt.Errorf("meter: topic metadata: no partitions for %s", m.cfg.Topic)
}
