package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// dialAll opens n connections to url, closing them all if one fails.
func dialAll(ctx context.Context, name, url string, n int) ([]*ethsim.Client, error) {
	clients := make([]*ethsim.Client, n)
	for i := range clients {
		c, err := ethsim.Dial(ctx, url)
		if err != nil {
			closeAll(clients[:i])
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		clients[i] = c
	}
	return clients, nil
}

func closeAll(cs []*ethsim.Client) {
	for _, c := range cs {
		c.Close()
	}
}

// closedLoopTally is what one connection's closed loop counted.
type closedLoopTally struct {
	ok, failed, answered int64 // answered: ok plus JSON-RPC errors
	lat                  []time.Duration
	err                  error // the connection broke
}

// closedLoop calls lc.method on c, one call at a time, until end.
func closedLoop(ctx context.Context, c *ethsim.Client, lc loadConfig, end time.Time, record bool) closedLoopTally {
	var t closedLoopTally
	for time.Now().Before(end) && ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t0 := time.Now()
		_, err := c.Call(cctx, lc.method, lc.params...)
		d := time.Since(t0)
		cancel()
		var rpcErr *ethsim.RPCError
		switch {
		case err == nil:
			t.ok++
			t.answered++
			if record {
				t.lat = append(t.lat, d)
			}
		case errors.As(err, &rpcErr):
			t.failed++ // answered, with an error: the loop goes on
			t.answered++
		default:
			t.failed++
			t.err = err
			return t
		}
	}
	return t
}

// runClosedLoop drives one target closed-loop: each connection sends a
// request, waits for its answer and sends the next, as fast as the target
// answers, for lc.duration after lc.warmup of the same unmeasured. The
// latency is then the target's, and the throughput what it sustains at
// that concurrency.
func runClosedLoop(ctx context.Context, name, url string, lc loadConfig, watch *cpuWatch) (*loadResult, error) {
	clients, err := dialAll(ctx, name, url, lc.conns)
	if err != nil {
		return nil, err
	}
	defer closeAll(clients)
	phase := func(d time.Duration, record bool) []closedLoopTally {
		tallies := make([]closedLoopTally, len(clients))
		end := time.Now().Add(d)
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() { tallies[i] = closedLoop(ctx, c, lc, end, record) })
		}
		wg.Wait()
		return tallies
	}
	// At least one call per connection, so the path is open end to end.
	for _, t := range phase(max(lc.warmup, time.Nanosecond), false) {
		if t.err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", name, t.err)
		}
		if t.ok == 0 {
			return nil, fmt.Errorf("%s: warm-up: no %s call succeeded", name, lc.method)
		}
	}
	cpu0, err := watchStart(watch)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	tallies := phase(lc.duration, true)
	res := &loadResult{mode: modeClosedLoop, target: name, conns: lc.conns, elapsed: time.Since(start)}
	if res.cpu, err = watchEnd(watch, cpu0, lc.settle); err != nil {
		return nil, err
	}
	var broken error
	for _, t := range tallies {
		res.ok += t.ok
		res.failed += t.failed
		res.messages += 2 * t.answered
		res.latencies = append(res.latencies, t.lat...)
		if t.err != nil && broken == nil {
			broken = t.err
		}
	}
	res.sent = res.ok + res.failed
	slices.Sort(res.latencies)
	if broken != nil && ctx.Err() == nil {
		return res, fmt.Errorf("%s: a connection broke during the run: %w", name, broken)
	}
	return res, nil
}
