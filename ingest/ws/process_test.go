package ws_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/ingest/ws"
	"github.com/relaymeter/relaymeter/internal/pgtest"
)

// The edge in a child process. Measuring the edge's own CPU and heap needs
// it alone in a process: in-process, the node, the clients and the broker
// share the heap and the CPU clock. TestMain re-executes the test binary
// with childEnv set to a JSON childConfig; the child runs only the edge and
// its recorder (producing to the parent's broker), prints its address, serves
// /debug/stats beside the edge, logs JSON to stderr, and stops gracefully
// when its stdin closes.
const childEnv = "RELAYMETER_WS_TEST_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		if err := runChild(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "child edge:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(pgtest.Main(m))
}

// childConfig is what the parent asks of a child edge.
type childConfig struct {
	Brokers        []string
	Upstream       string
	Forwarding     ws.Forwarding
	PayloadCapture int64
	MaxMessageSize int64
	QueueBytes     int64
	BufferBytes    int64
	WriteTimeout   time.Duration
	// Bare runs, instead of the edge, a bare proxy on the same WebSocket
	// library that only copies messages: the floor for BenchmarkEdgeCPU.
	Bare bool
	// SampleHeap, when set, forces a GC every SampleHeap and keeps the
	// largest live heap seen, for childStats.MaxLiveHeap.
	SampleHeap time.Duration
	// CPUProfile, when set, is where the child writes its CPU profile;
	// AllocProfile, its allocation profile, as it stops.
	CPUProfile, AllocProfile string
	// HeapProfile, when set with SampleHeap, is where the child writes a
	// heap profile each time the live heap reaches a new peak.
	HeapProfile string
}

// bareProxy copies WebSocket messages between each client and a new
// connection to upstream, recording nothing: what any proxy on this
// library pays per message.
func bareProxy(upstream string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up, _, err := websocket.Dial(r.Context(), upstream, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			up.CloseNow()
			return
		}
		c.SetReadLimit(1 << 20)
		up.SetReadLimit(1 << 20)
		done := make(chan struct{}, 2)
		copyMsgs := func(dst, src *websocket.Conn) {
			var buf bytes.Buffer
			for {
				typ, rd, err := src.Reader(context.Background())
				if err == nil {
					buf.Reset()
					_, err = buf.ReadFrom(rd)
				}
				if err == nil {
					err = dst.Write(context.Background(), typ, buf.Bytes())
				}
				if err != nil {
					dst.CloseNow()
					src.CloseNow()
					done <- struct{}{}
					return
				}
			}
		}
		go copyMsgs(up, c)
		copyMsgs(c, up)
		<-done
	})
}

// childStats is a snapshot of the child's counters.
type childStats struct {
	CPUNanos    int64  // user + system CPU of the whole process
	Allocs      uint64 // heap objects allocated
	AllocBytes  uint64
	SchedEvents uint64 // goroutines made to run (runtime/metrics /sched/latencies)
	GCs         uint64
	MaxLiveHeap uint64 // with SampleHeap: the largest heap right after a GC
	LiveHeap    uint64 // the heap right after a GC forced by this request
	// runtime.MemStats' HeapInuse and StackInuse, after that GC.
	HeapInuse, StackInuse uint64
	// The edge's buffer budget in use (relaymeter_ws_edge_buffer_bytes):
	// now, when the heap peaked, and the most sampled.
	Buffered, BufferedAtPeak, MaxBuffered uint64
}

func runChild(raw string) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return err
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if cfg.AllocProfile != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			if f, err := os.Create(cfg.AllocProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rec, err := record.New(record.Config{Brokers: cfg.Brokers, EdgeID: "child", Logger: log})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	edge, err := ws.New(ws.Config{Recorder: rec, Registerer: reg, Upstream: cfg.Upstream, Supplier: "sup", Forwarding: cfg.Forwarding, OpenAccess: true,
		PayloadCapture: cfg.PayloadCapture, MaxMessageSize: cfg.MaxMessageSize,
		QueueBytes: cfg.QueueBytes, BufferBytes: cfg.BufferBytes, WriteTimeout: cfg.WriteTimeout, Logger: log,
		Limits: ws.Limits{MaxConnectionsPerIP: -1}}) // the load comes from loopback
	if err != nil {
		return err
	}
	heap := maxHeap{buffered: func() uint64 { return gaugeValue(reg, "relaymeter_ws_edge_buffer_bytes") }}
	if cfg.SampleHeap > 0 {
		heap.profile = cfg.HeapProfile
		stop := heap.sample(cfg.SampleHeap)
		defer stop()
	}
	var proxy http.Handler = edge
	if cfg.Bare {
		proxy = bareProxy(cfg.Upstream)
	}
	mux := http.NewServeMux()
	mux.Handle("/", proxy)
	mux.HandleFunc("/debug/stats", func(w http.ResponseWriter, r *http.Request) {
		s := readStats()
		s.MaxLiveHeap, s.BufferedAtPeak, s.MaxBuffered = heap.max()
		s.Buffered = heap.buffered()
		if r.URL.Query().Has("gc") {
			runtime.GC()
			s.LiveHeap = liveHeap()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			s.HeapInuse, s.StackInuse = ms.HeapInuse, ms.StackInuse
		}
		_ = json.NewEncoder(w).Encode(s)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	fmt.Printf("listening %s\n", l.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = l.Close()
	return errors.Join(edge.Close(ctx), rec.Close(ctx))
}

var statSamples = []metrics.Sample{
	{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"},
	{Name: "/sched/latencies:seconds"}, {Name: "/gc/cycles/total:gc-cycles"},
}

func readStats() childStats {
	metrics.Read(statSamples)
	var s childStats
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.CPUNanos = ru.Utime.Nano() + ru.Stime.Nano()
	}
	s.Allocs, s.AllocBytes = statSamples[0].Value.Uint64(), statSamples[1].Value.Uint64()
	for _, n := range statSamples[2].Value.Float64Histogram().Counts {
		s.SchedEvents += n
	}
	s.GCs = statSamples[3].Value.Uint64()
	return s
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// maxHeap keeps the largest live heap seen by its sampler.
type maxHeap struct {
	buffered func() uint64

	mu                      sync.Mutex
	peak, atPeak, maxBuffer uint64
	profile                 string
}

func (h *maxHeap) sample(every time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			before := h.buffered()
			runtime.GC()
			live, buffered := liveHeap(), max(before, h.buffered())
			h.mu.Lock()
			h.maxBuffer = max(h.maxBuffer, buffered)
			if live > h.peak {
				h.peak, h.atPeak = live, buffered
				if h.profile != "" {
					if f, err := os.Create(h.profile); err == nil {
						_ = pprof.Lookup("heap").WriteTo(f, 0)
						f.Close()
					}
				}
			}
			h.mu.Unlock()
		}
	}()
	return func() { close(done) }
}

func (h *maxHeap) max() (peak, bufferedAtPeak, maxBuffered uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak, h.atPeak, h.maxBuffer
}

// gaugeValue reads a gauge from reg, 0 if it has none.
func gaugeValue(reg *prometheus.Registry, name string) uint64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return uint64(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return 0
}

// child is a running child edge, seen from the parent.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	done  chan error

	mu   sync.Mutex
	logs []string // the child's log lines
}

// startChild starts an edge in a child process and stops it when t ends.
// onLog, when set, sees each of the child's JSON log lines as it arrives.
func startChild(t testing.TB, cfg childConfig, onLog func(map[string]any)) *child {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: exec.Command(exe, "-test.run=^$"), done: make(chan error, 1)}
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.logs = append(c.logs, sc.Text())
			c.mu.Unlock()
			var line map[string]any
			if onLog != nil && json.Unmarshal(sc.Bytes(), &line) == nil {
				onLog(line)
			}
		}
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
			}
		}
		<-logsDone // Wait must not close the pipes while they are read
		c.done <- c.cmd.Wait()
	}()
	select {
	case c.addr = <-addr:
	case err := <-c.done:
		t.Fatalf("child edge exited before listening: %v\n%s", err, c.logText())
	case <-time.After(60 * time.Second):
		_ = c.cmd.Process.Kill()
		t.Fatalf("child edge did not start:\n%s", c.logText())
	}
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *child) url(app string) string { return "ws://" + c.addr + "/" + app }

func (c *child) logText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.logs, "\n")
}

// stats asks the child for its counters; with gc it first collects garbage
// and reports the live heap.
func (c *child) stats(t testing.TB, gc bool) childStats {
	t.Helper()
	u := "http://" + c.addr + "/debug/stats"
	if gc {
		u += "?gc"
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s childStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// stop closes the child's stdin, so it stops gracefully, and waits for it.
func (c *child) stop(t testing.TB) {
	if c.stdin == nil {
		return
	}
	_ = c.stdin.Close()
	c.stdin = nil
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("child edge: %v\n%s", err, c.logText())
		}
	case <-time.After(60 * time.Second):
		_ = c.cmd.Process.Kill()
		t.Errorf("child edge did not stop:\n%s", c.logText())
	}
}
