package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymeter/relaymeter/internal/ethsim"
)

func init() {
	register(command{name: "loadgen", summary: "generate JSON-RPC WebSocket load and report throughput, latency and edge CPU", run: runLoadgen})
}

// loadConfig is one load run.
type loadConfig struct {
	conns    int
	rate     int // requests per second, all connections together
	duration time.Duration
	method   string
	inflight int // per connection
}

// loadResult is what one load run measured.
type loadResult struct {
	target            string
	sent, ok, failed  int64
	elapsed           time.Duration
	latencies         []time.Duration // sorted
	cpuBefore, cpuEnd time.Duration   // CPU of the watched process, if any
}

func (r *loadResult) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(r.latencies)))) - 1
	return r.latencies[max(i, 0)]
}

func runLoadgen(ctx context.Context, args []string, sio stdio) error {
	if len(args) == 0 || args[0] != "ws" {
		fmt.Fprintln(sio.err, "usage: relaymeter loadgen ws [flags]")
		return errUsage
	}
	fs := flag.NewFlagSet("loadgen ws", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	var lc loadConfig
	fs.IntVar(&lc.conns, "conns", 20, "WebSocket connections")
	fs.IntVar(&lc.rate, "rate", 5000, "requests per second over all connections (each answered: 2 messages)")
	fs.DurationVar(&lc.duration, "duration", 10*time.Second, "length of each run")
	fs.StringVar(&lc.method, "method", "eth_blockNumber", "JSON-RPC method to call")
	fs.IntVar(&lc.inflight, "inflight", 64, "most requests in flight per connection")
	edge := fs.String("edge", "", "edge URL to load (ws://host/<application>)")
	upstream := fs.String("upstream", "", "upstream URL to load directly, for comparison")
	edgePID := fs.Int("edge-pid", 0, "process id of the edge, to report its CPU per message")
	self := fs.Bool("self", false, "start an upstream, an embedded Kafka and an edge process, and compare direct vs through the edge")
	forwarding := fs.String("forwarding", "after-ack", "with --self: the edge's --forwarding")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if lc.conns <= 0 || lc.rate <= 0 || lc.duration <= 0 || lc.inflight <= 0 {
		return errors.New("--conns, --rate, --duration and --inflight must be positive")
	}
	if *self {
		env, err := startSelfLoad(ctx, sio.err, *forwarding)
		if err != nil {
			return err
		}
		defer env.stop()
		*edge, *upstream, *edgePID = env.edgeURL, env.upstreamURL, env.edgePID
	}
	if *edge == "" && *upstream == "" {
		return errors.New("give --edge, --upstream, or --self")
	}
	fmt.Fprintf(sio.out, "loadgen: %d connections, %d requests/s, %s each, method %s\n", lc.conns, lc.rate, lc.duration, lc.method)
	var results []*loadResult
	for _, t := range []struct{ name, url string }{{"direct", *upstream}, {"edge", *edge}} {
		if t.url == "" {
			continue
		}
		pid := 0
		if t.name == "edge" {
			pid = *edgePID
		}
		r, err := runLoad(ctx, t.name, t.url, lc, pid)
		if err != nil {
			return err
		}
		results = append(results, r)
		report(sio.out, r, pid != 0)
	}
	if len(results) == 2 {
		d, e := results[0], results[1]
		fmt.Fprintf(sio.out, "edge/direct: throughput %.2f, p50 latency %.2f, p99 latency %.2f\n",
			rate(e)/rate(d), ratio(e.quantile(0.5), d.quantile(0.5)), ratio(e.quantile(0.99), d.quantile(0.99)))
	}
	return nil
}

func rate(r *loadResult) float64 { return float64(r.ok) / r.elapsed.Seconds() }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func report(w io.Writer, r *loadResult, cpu bool) {
	fmt.Fprintf(w, "%-6s sent %d ok %d failed %d in %s: %.0f requests/s, %.0f messages/s; latency p50 %s p90 %s p99 %s max %s\n",
		r.target, r.sent, r.ok, r.failed, r.elapsed.Round(time.Millisecond), rate(r), 2*rate(r),
		r.quantile(0.5).Round(time.Microsecond), r.quantile(0.9).Round(time.Microsecond),
		r.quantile(0.99).Round(time.Microsecond), r.quantile(1).Round(time.Microsecond))
	if cpu && r.ok > 0 {
		used := r.cpuEnd - r.cpuBefore
		fmt.Fprintf(w, "%-6s edge process CPU %s = %.1f µs per message (%d messages: requests and responses)\n",
			r.target, used.Round(time.Millisecond), float64(used.Microseconds())/float64(2*r.ok), 2*r.ok)
	}
}

// runLoad drives one target open-loop: requests are sent on a fixed
// schedule, whether or not earlier ones were answered, up to inflight per
// connection, so a slow target shows as latency rather than hiding it.
func runLoad(ctx context.Context, name, url string, lc loadConfig, pid int) (*loadResult, error) {
	clients := make([]*ethsim.Client, lc.conns)
	for i := range clients {
		c, err := ethsim.Dial(ctx, url)
		if err != nil {
			for _, c := range clients[:i] {
				c.Close()
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		clients[i] = c
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	// Warm up the path (and the edge's first-use costs) before measuring.
	for _, c := range clients {
		if _, err := c.Call(ctx, lc.method); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", name, err)
		}
	}
	res := &loadResult{target: name}
	if pid != 0 {
		res.cpuBefore = processCPU(pid)
	}
	var sent, ok, failed atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, lc.rate*int(lc.duration.Seconds()+1))
	interval := time.Duration(float64(time.Second) * float64(lc.conns) / float64(lc.rate))
	start := time.Now()
	end := start.Add(lc.duration)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem := make(chan struct{}, lc.inflight)
			var calls sync.WaitGroup
			// Stagger connections across one interval.
			next := start.Add(interval * time.Duration(i) / time.Duration(lc.conns))
			for next.Before(end) && ctx.Err() == nil {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(interval)
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					continue
				}
				sent.Add(1)
				calls.Add(1)
				go func() {
					defer calls.Done()
					defer func() { <-sem }()
					t0 := time.Now()
					cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					_, err := c.Call(cctx, lc.method)
					cancel()
					if err != nil {
						failed.Add(1)
						return
					}
					d := time.Since(t0)
					ok.Add(1)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}()
			}
			calls.Wait()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	if pid != 0 {
		res.cpuEnd = processCPU(pid)
	}
	res.sent, res.ok, res.failed = sent.Load(), ok.Load(), failed.Load()
	slices.Sort(lat)
	res.latencies = lat
	return res, nil
}

// processCPU returns the user+system CPU time of a process, from
// /proc/<pid>/stat (0 when it cannot be read).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}
