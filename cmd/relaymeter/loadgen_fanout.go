package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// fanoutGrace is how long a subscriber waits past its stream's schedule
// for notifications still on their way.
const fanoutGrace = 5 * time.Second

// subscriberTally is what one subscriber counted.
type subscriberTally struct {
	delivered, duplicates, outOfRange int64
	lat                               []time.Duration
	last                              time.Time // when the last notification arrived
	calls                             int64     // subscribe and unsubscribe calls answered
	err                               error
}

// runFanout subscribes lc.conns connections to the upstream's
// ethsim.StreamKind stream, lc.notify notifications per second each for
// lc.duration, and counts what arrives: each notification is numbered, so
// missing and repeated ones are counted exactly, and stamped with its
// scheduled time, so its delivery latency (scheduled to received, queueing
// included) is measured on this machine's clock, the upstream's.
func runFanout(ctx context.Context, name, url string, lc loadConfig, watch *cpuWatch) (*loadResult, error) {
	clients, err := dialAll(ctx, name, url, lc.conns)
	if err != nil {
		return nil, err
	}
	defer closeAll(clients)
	for _, c := range clients {
		if _, err := c.Call(ctx, "eth_chainId"); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", name, err)
		}
	}
	count := max(int64(math.Round(lc.notify*lc.duration.Seconds())), 1)
	params := ethsim.StreamParams{Rate: lc.notify, Count: count}
	cpu0, err := watchStart(watch)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	grace := lc.grace
	if grace <= 0 {
		grace = fanoutGrace
	}
	deadline := start.Add(lc.duration + grace)
	tallies := make([]subscriberTally, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() { tallies[i] = subscribe(ctx, c, params, deadline) })
	}
	wg.Wait()
	res := &loadResult{mode: modeFanout, target: name, conns: lc.conns}
	last := start
	var failed error
	for _, t := range tallies {
		res.notified += count
		res.delivered += t.delivered
		res.duplicates += t.duplicates
		res.messages += t.delivered + t.duplicates + t.outOfRange + 2*t.calls
		res.latencies = append(res.latencies, t.lat...)
		if t.last.After(last) {
			last = t.last
		}
		if t.err != nil && failed == nil {
			failed = t.err
		}
	}
	res.elapsed = last.Sub(start)
	if res.cpu, err = watchEnd(watch, cpu0, lc.settle); err != nil {
		return nil, err
	}
	slices.Sort(res.latencies)
	if failed != nil && ctx.Err() == nil {
		return res, fmt.Errorf("%s: %w", name, failed)
	}
	return res, nil
}

// subscribe runs one subscriber: it subscribes, receives until its stream
// is complete, the connection ends or deadline passes, and unsubscribes.
func subscribe(ctx context.Context, c *ethsim.Client, p ethsim.StreamParams, deadline time.Time) subscriberTally {
	var t subscriberTally
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	id, notes, err := c.Subscribe(sctx, ethsim.StreamKind, p)
	cancel()
	if err != nil {
		t.err = fmt.Errorf("eth_subscribe %s: %w", ethsim.StreamKind, err)
		return t
	}
	t.calls++
	t.lat = make([]time.Duration, 0, p.Count)
	seen := make([]bool, p.Count+1)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for t.delivered < p.Count {
		select {
		case raw, ok := <-notes:
			if !ok {
				t.err = fmt.Errorf("subscription %s: connection closed after %d of %d notifications", id, t.delivered, p.Count)
				return t
			}
			now := time.Now()
			var it ethsim.StreamItem
			if json.Unmarshal(raw, &it) != nil || it.Seq < 1 || it.Seq > p.Count {
				t.outOfRange++
				continue
			}
			if seen[it.Seq] {
				t.duplicates++
				continue
			}
			seen[it.Seq] = true
			t.delivered++
			t.last = now
			t.lat = append(t.lat, now.Sub(time.Unix(0, it.Due)))
		case <-timer.C:
			// Missing ones are counted by the caller: asked minus delivered.
			return unsubscribe(ctx, c, id, t)
		case <-ctx.Done():
			return t
		}
	}
	return unsubscribe(ctx, c, id, t)
}

func unsubscribe(ctx context.Context, c *ethsim.Client, id string, t subscriberTally) subscriberTally {
	uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Call(uctx, "eth_unsubscribe", id); err == nil {
		t.calls++
	} else if t.err == nil && ctx.Err() == nil {
		t.err = fmt.Errorf("eth_unsubscribe: %w", err)
	}
	return t
}
