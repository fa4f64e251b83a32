package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymeter/relaymeter/internal/ethsim"
)

func init() {
	register(command{name: "loadgen", summary: "generate JSON-RPC WebSocket load and report throughput, latency and edge CPU", run: runLoadgen})
}

// loadMode is how a load run drives its target.
type loadMode string

const (
	// modeOpenLoop sends requests on a fixed schedule, answered or not.
	modeOpenLoop loadMode = "open-loop"
	// modeClosedLoop has each connection send a request, wait for its
	// answer and send the next, as fast as the target allows.
	modeClosedLoop loadMode = "closed-loop"
	// modeFanout has each connection subscribe to a stream of
	// notifications from the upstream and counts what arrives.
	modeFanout loadMode = "fanout"
)

// loadConfig is one load run.
type loadConfig struct {
	mode     loadMode
	conns    int
	rate     int // open loop: requests per second, all connections together
	duration time.Duration
	warmup   time.Duration // closed loop: unmeasured calls first
	method   string
	params   []any
	inflight int           // open loop: per connection
	notify   float64       // fan-out: notifications per second per subscriber
	grace    time.Duration // fan-out: wait past the schedule (default fanoutGrace)
	settle   time.Duration
}

// loadResult is what one load run measured.
type loadResult struct {
	mode             loadMode
	target           string
	conns            int
	sent, ok, failed int64 // requests (open and closed loop)
	// Fan-out: notifications the upstream was asked to send (it sends each
	// exactly once, in order), those that arrived, and repeats.
	notified, delivered, duplicates int64
	// messages is what crossed the target in both directions: requests,
	// responses, notifications, subscribe and unsubscribe calls.
	messages  int64
	elapsed   time.Duration
	latencies []time.Duration // sorted
	cpu       *cpuUse         // nil when no process is watched
}

func (r *loadResult) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(r.latencies)))) - 1
	return r.latencies[max(i, 0)]
}

func runLoadgen(ctx context.Context, args []string, sio stdio) error {
	if len(args) > 0 && args[0] == "upstream" {
		return runLoadUpstream(ctx, args[1:], sio)
	}
	if len(args) == 0 || args[0] != "ws" {
		fmt.Fprintln(sio.err, "usage: relaymeter loadgen ws [flags]      load a WebSocket JSON-RPC target\n       relaymeter loadgen upstream [flags] serve the simulated node the load runs against")
		return errUsage
	}
	fs := flag.NewFlagSet("loadgen ws", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	var lc loadConfig
	var pids pidList
	fs.IntVar(&lc.conns, "conns", 20, "WebSocket connections (with --fanout: subscribers)")
	fs.IntVar(&lc.rate, "rate", 5000, "open loop: requests per second over all connections (each answered: 2 messages)")
	fs.DurationVar(&lc.duration, "duration", 10*time.Second, "length of each run (with --fanout: of each notification stream)")
	fs.DurationVar(&lc.warmup, "warmup", time.Second, "closed loop: unmeasured calls for this long before the run")
	fs.StringVar(&lc.method, "method", "eth_blockNumber", "JSON-RPC method to call")
	params := fs.String("params", "", "JSON array of the call's params (default: none), e.g. '[{\"to\":\"0x…\",\"data\":\"0x…\"},\"latest\"]'")
	fs.IntVar(&lc.inflight, "inflight", 64, "open loop: most requests in flight per connection")
	closed := fs.Bool("closed-loop", false, "each connection sends a request, waits for its answer and sends the next, as fast as it can")
	fanout := fs.Bool("fanout", false, "each connection subscribes to the upstream's "+ethsim.StreamKind+" stream; reports notifications delivered vs sent and their delivery latency (upstream on this machine's clock)")
	fs.Float64Var(&lc.notify, "notify-rate", 200, "with --fanout: notifications per second per subscriber")
	edge := fs.String("edge", "", "edge URL to load (ws://host/v1/<key>, or ws://host/<application> where the edge has open access)")
	upstream := fs.String("upstream", "", "upstream URL to load directly, for comparison")
	fs.Var(&pids, "edge-pid", "process ids of the hop (comma-separated, or repeat the flag), to report its CPU per message")
	children := fs.Bool("edge-children", false, "count the CPU of the --edge-pid processes' descendants too (dev's Postgres, nginx's workers), exited ones included")
	fs.DurationVar(&lc.settle, "cpu-settle", 0, "after a run, keep counting the hop's CPU until it is idle, for at most this long (work it finishes late, such as dev's meter catching up, is the run's)")
	jsonOut := fs.Bool("json", false, "print each target's result as one JSON object per line on stdout (the text report goes to stderr)")
	self := fs.Bool("self", false, "start an upstream, an embedded Kafka and an edge process, and compare direct vs through the edge")
	forwarding := fs.String("forwarding", "after-ack", "with --self: the edge's --forwarding")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	lc.mode = modeOpenLoop
	switch {
	case *closed && *fanout:
		return errors.New("--closed-loop and --fanout are different runs: give one")
	case *closed:
		lc.mode = modeClosedLoop
	case *fanout:
		lc.mode = modeFanout
	}
	if lc.conns <= 0 || lc.duration <= 0 || lc.warmup < 0 || lc.settle < 0 {
		return errors.New("--conns and --duration must be positive, --warmup and --cpu-settle not negative")
	}
	if lc.mode == modeOpenLoop && (lc.rate <= 0 || lc.inflight <= 0) {
		return errors.New("--rate and --inflight must be positive")
	}
	if lc.mode == modeFanout && !(lc.notify > 0 && lc.notify <= 1e6) {
		return errors.New("--notify-rate must be in (0, 1e6]")
	}
	if *params != "" {
		var ps []json.RawMessage
		if err := json.Unmarshal([]byte(*params), &ps); err != nil {
			return fmt.Errorf("--params: want a JSON array: %w", err)
		}
		for _, p := range ps {
			lc.params = append(lc.params, p)
		}
	}
	if len(pids) > 0 {
		if _, err := os.Stat("/proc/self/stat"); err != nil {
			return errNoCPU
		}
	}
	if *self {
		env, err := startSelfLoad(ctx, sio.err, *forwarding)
		if err != nil {
			return err
		}
		defer env.stop()
		*edge, *upstream, pids = env.edgeURL, env.upstreamURL, pidList{env.edgePID}
	}
	if *edge == "" && *upstream == "" {
		return errors.New("give --edge, --upstream, or --self")
	}
	text := sio.out
	if *jsonOut {
		text = sio.err
	}
	switch lc.mode {
	case modeOpenLoop:
		fmt.Fprintf(text, "loadgen: open loop, %d connections, %d requests/s, %s each, method %s\n", lc.conns, lc.rate, lc.duration, lc.method)
	case modeClosedLoop:
		fmt.Fprintf(text, "loadgen: closed loop, %d connections, %s each after %s warm-up, method %s\n", lc.conns, lc.duration, lc.warmup, lc.method)
	case modeFanout:
		fmt.Fprintf(text, "loadgen: fan-out, %d subscribers × %g notifications/s for %s\n", lc.conns, lc.notify, lc.duration)
	}
	var results []*loadResult
	for _, t := range []struct{ name, url string }{{"direct", *upstream}, {"edge", *edge}} {
		if t.url == "" {
			continue
		}
		var watch *cpuWatch
		if t.name == "edge" && len(pids) > 0 {
			watch = &cpuWatch{pids: pids, children: *children}
		}
		r, err := runMode(ctx, t.name, t.url, lc, watch)
		if err != nil {
			return err
		}
		results = append(results, r)
		report(text, r)
		if *jsonOut {
			b, err := json.Marshal(r.report())
			if err != nil {
				return err
			}
			fmt.Fprintf(sio.out, "%s\n", b)
		}
	}
	if len(results) == 2 {
		d, e := results[0], results[1]
		fmt.Fprintf(text, "edge/direct: throughput %.2f, p50 latency %.2f, p99 latency %.2f\n",
			msgRate(e)/msgRate(d), ratio(e.quantile(0.5), d.quantile(0.5)), ratio(e.quantile(0.99), d.quantile(0.99)))
	}
	return nil
}

// runMode runs one target in lc's mode, and charges the CPU of watch (if
// not nil) to it.
func runMode(ctx context.Context, name, url string, lc loadConfig, watch *cpuWatch) (*loadResult, error) {
	switch lc.mode {
	case modeClosedLoop:
		return runClosedLoop(ctx, name, url, lc, watch)
	case modeFanout:
		return runFanout(ctx, name, url, lc, watch)
	}
	return runLoad(ctx, name, url, lc, watch)
}

// msgRate is messages crossing the target per second.
func msgRate(r *loadResult) float64 { return float64(r.messages) / r.elapsed.Seconds() }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func report(w io.Writer, r *loadResult) {
	us := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
	switch r.mode {
	case modeFanout:
		fmt.Fprintf(w, "%-6s %d subscribers: sent %d delivered %d (missing %d, duplicates %d) in %s: %.0f notifications/s; latency p50 %s p90 %s p99 %s max %s\n",
			r.target, r.conns, r.notified, r.delivered, r.notified-r.delivered, r.duplicates, r.elapsed.Round(time.Millisecond),
			float64(r.delivered)/r.elapsed.Seconds(), us(r.quantile(0.5)), us(r.quantile(0.9)), us(r.quantile(0.99)), us(r.quantile(1)))
	default:
		fmt.Fprintf(w, "%-6s sent %d ok %d failed %d in %s: %.0f requests/s, %.0f messages/s; latency p50 %s p90 %s p99 %s max %s\n",
			r.target, r.sent, r.ok, r.failed, r.elapsed.Round(time.Millisecond), float64(r.ok)/r.elapsed.Seconds(), msgRate(r),
			us(r.quantile(0.5)), us(r.quantile(0.9)), us(r.quantile(0.99)), us(r.quantile(1)))
	}
	if r.cpu != nil && r.messages > 0 {
		settled := ""
		if r.cpu.tail > 0 || !r.cpu.settled {
			settled = fmt.Sprintf(", %s of it after the run", r.cpu.tail.Round(time.Millisecond))
			if !r.cpu.settled {
				settled += " (still busy when the settle limit passed)"
			}
		}
		procs := "1 process"
		if r.cpu.processes != 1 {
			procs = fmt.Sprintf("%d processes", r.cpu.processes)
		}
		fmt.Fprintf(w, "%-6s hop CPU (%s) %s%s = %.1f µs per message (%d messages, both directions)\n",
			r.target, procs, r.cpu.total().Round(time.Millisecond), settled,
			float64(r.cpu.total().Nanoseconds())/1e3/float64(r.messages), r.messages)
	}
}

// loadReport is a loadResult as `loadgen ws --json` prints it, one object
// per target and line. Times are in microseconds, rates per second.
type loadReport struct {
	Mode     loadMode `json:"mode"`
	Target   string   `json:"target"` // direct or edge
	Conns    int      `json:"conns"`
	ElapsedS float64  `json:"elapsed_s"`
	// Requests: sent, answered, failed (open and closed loop).
	Sent   int64 `json:"sent"`
	OK     int64 `json:"ok"`
	Failed int64 `json:"failed"`
	// Fan-out: notifications asked of the upstream, delivered, missing
	// (asked but not delivered) and duplicated.
	Notified   int64 `json:"notified"`
	Delivered  int64 `json:"delivered"`
	Missing    int64 `json:"missing"`
	Duplicates int64 `json:"duplicates"`
	// Messages crossed the target, both directions; MsgsPerS is their rate
	// and CallsPerS that of answered requests (a call is 2 messages).
	Messages  int64   `json:"messages"`
	MsgsPerS  float64 `json:"msgs_per_s"`
	CallsPerS float64 `json:"calls_per_s"`
	// Latency of a call (request to answer) or of a notification
	// (scheduled to delivered).
	Samples int     `json:"samples"`
	P50us   float64 `json:"p50_us"`
	P90us   float64 `json:"p90_us"`
	P99us   float64 `json:"p99_us"`
	MaxUs   float64 `json:"max_us"`
	// CPU of the watched processes, when --edge-pid is given.
	CPU *cpuReport `json:"cpu,omitempty"`
}

// cpuReport is the hop's CPU in a loadReport.
type cpuReport struct {
	PIDs      []int   `json:"pids"`
	Processes int     `json:"processes"`
	WindowS   float64 `json:"window_s"` // during the run
	TailS     float64 `json:"tail_s"`   // after it, until idle (--cpu-settle)
	Settled   bool    `json:"settled"`  // idle within --cpu-settle
	UsPerMsg  float64 `json:"us_per_msg"`
}

func (r *loadResult) report() loadReport {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	out := loadReport{
		Mode: r.mode, Target: r.target, Conns: r.conns, ElapsedS: r.elapsed.Seconds(),
		Sent: r.sent, OK: r.ok, Failed: r.failed,
		Notified: r.notified, Delivered: r.delivered, Missing: r.notified - r.delivered, Duplicates: r.duplicates,
		Messages: r.messages, MsgsPerS: msgRate(r), CallsPerS: float64(r.ok) / r.elapsed.Seconds(),
		Samples: len(r.latencies), P50us: us(r.quantile(0.5)), P90us: us(r.quantile(0.9)), P99us: us(r.quantile(0.99)), MaxUs: us(r.quantile(1)),
	}
	if r.cpu != nil {
		out.CPU = &cpuReport{PIDs: r.cpu.pids, Processes: r.cpu.processes, WindowS: r.cpu.window.Seconds(), TailS: r.cpu.tail.Seconds(), Settled: r.cpu.settled}
		if r.messages > 0 {
			out.CPU.UsPerMsg = us(r.cpu.total()) / float64(r.messages)
		}
	}
	return out
}

// watchStart and watchEnd bracket a run with the watched CPU.
func watchStart(w *cpuWatch) (time.Duration, error) {
	if w == nil {
		return 0, nil
	}
	t, _, err := w.total()
	return t, err
}

func watchEnd(w *cpuWatch, before time.Duration, settle time.Duration) (*cpuUse, error) {
	if w == nil {
		return nil, nil
	}
	end, n, err := w.total()
	if err != nil {
		return nil, err
	}
	u := &cpuUse{pids: w.pids, processes: n, window: end - before, settled: true}
	if settle > 0 {
		if u.tail, u.settled, err = w.settle(settle); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// runLoad drives one target open-loop: requests are sent on a fixed
// schedule, whether or not earlier ones were answered, up to inflight per
// connection, so a slow target shows as latency rather than hiding it.
func runLoad(ctx context.Context, name, url string, lc loadConfig, watch *cpuWatch) (*loadResult, error) {
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
		if _, err := c.Call(ctx, lc.method, lc.params...); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", name, err)
		}
	}
	res := &loadResult{mode: modeOpenLoop, target: name, conns: lc.conns}
	cpu0, err := watchStart(watch)
	if err != nil {
		return nil, err
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
					_, err := c.Call(cctx, lc.method, lc.params...)
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
	if res.cpu, err = watchEnd(watch, cpu0, lc.settle); err != nil {
		return nil, err
	}
	res.sent, res.ok, res.failed = sent.Load(), ok.Load(), failed.Load()
	res.messages = 2 * res.ok
	slices.Sort(lat)
	res.latencies = lat
	return res, nil
}
