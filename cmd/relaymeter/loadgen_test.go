package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/internal/ethsim"
)

func simNode(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(ethsim.New(ethsim.Config{HeadInterval: -1}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// TestLoadgenOpenLoop drives the simulated node open-loop and checks that every
// request is accounted for, answered ones with a latency.
func TestLoadgenOpenLoop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lc := loadConfig{mode: modeOpenLoop, conns: 4, rate: 400, duration: 500 * time.Millisecond, method: "eth_chainId", inflight: 8}
	r, err := runLoad(ctx, "direct", simNode(t), lc, &cpuWatch{pids: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	if r.sent < 190 || r.sent > 210 { // 4 connections, one request each 10 ms
		t.Fatalf("sent %d requests at 400/s for 0.5 s", r.sent)
	}
	if r.ok != r.sent || r.failed != 0 || int64(len(r.latencies)) != r.ok || r.messages != 2*r.ok {
		t.Fatalf("sent %d, ok %d, failed %d, %d latencies, %d messages", r.sent, r.ok, r.failed, len(r.latencies), r.messages)
	}
	if p50, p99 := r.quantile(0.5), r.quantile(0.99); p50 <= 0 || p99 < p50 {
		t.Fatalf("p50 %s, p99 %s", p50, p99)
	}
	if r.cpu == nil || r.cpu.processes != 1 || r.cpu.window < 0 {
		t.Fatalf("process CPU not read: %+v", r.cpu)
	}
}

// TestLoadgenClosedLoop runs eth_call closed-loop: one call in flight per
// connection, every answered call timed and counted as two messages, and
// the hop's CPU read.
func TestLoadgenClosedLoop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := simNode(t)
	params := []any{json.RawMessage(`{"to":"0x00000000000000000000000000000000000000aa","data":"0x70a08231"}`), "latest"}
	lc := loadConfig{mode: modeClosedLoop, conns: 3, duration: 300 * time.Millisecond, warmup: 50 * time.Millisecond, method: "eth_call", params: params}
	r, err := runClosedLoop(ctx, "direct", url, lc, &cpuWatch{pids: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	if r.ok < 30 || r.failed != 0 || r.sent != r.ok || int64(len(r.latencies)) != r.ok || r.messages != 2*r.ok {
		t.Fatalf("ok %d, failed %d, sent %d, %d latencies, %d messages", r.ok, r.failed, r.sent, len(r.latencies), r.messages)
	}
	if r.elapsed < lc.duration || r.elapsed > lc.duration+time.Second {
		t.Fatalf("ran %s for a %s run", r.elapsed, lc.duration)
	}
	// Closed loop: a connection's calls follow one another, so together
	// they cannot take longer than the run.
	var sum time.Duration
	for _, d := range r.latencies {
		sum += d
	}
	if sum > time.Duration(lc.conns)*r.elapsed {
		t.Fatalf("latencies add up to %s over %d connections in %s: calls overlapped", sum, lc.conns, r.elapsed)
	}
	if r.cpu == nil || r.cpu.window <= 0 {
		t.Fatalf("the load used no CPU of this process: %+v", r.cpu)
	}

	// A method the node does not have fails the warm-up, rather than
	// reporting a run of errors as throughput.
	lc.method, lc.params = "eth_nope", nil
	if _, err := runClosedLoop(ctx, "direct", url, lc, nil); err == nil || !strings.Contains(err.Error(), "no eth_nope call succeeded") {
		t.Fatalf("closed loop on an unknown method: %v", err)
	}
}

// TestLoadgenFanout subscribes 4 connections to 100 notifications each at 200/s
// and checks that all 400 arrive, each with a delivery latency, over about
// the stream's length.
func TestLoadgenFanout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lc := loadConfig{mode: modeFanout, conns: 4, duration: 500 * time.Millisecond, notify: 200}
	r, err := runFanout(ctx, "direct", simNode(t), lc, &cpuWatch{pids: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	if r.notified != 400 || r.delivered != 400 || r.duplicates != 0 || len(r.latencies) != 400 {
		t.Fatalf("notified %d, delivered %d, duplicates %d, %d latencies", r.notified, r.delivered, r.duplicates, len(r.latencies))
	}
	if r.messages != 400+4*4 { // notifications, and each subscriber's subscribe and unsubscribe
		t.Fatalf("%d messages, want %d", r.messages, 400+16)
	}
	// 100 notifications at 200/s: the last is due 495 ms after the first.
	if r.elapsed < 490*time.Millisecond || r.elapsed > lc.duration+fanoutGrace {
		t.Fatalf("stream delivered over %s", r.elapsed)
	}
	if p50, p99 := r.quantile(0.5), r.quantile(0.99); p50 <= 0 || p99 < p50 || p99 > r.elapsed {
		t.Fatalf("delivery latency p50 %s, p99 %s", p50, p99)
	}
}

// TestLoadgenFanoutCounts runs a subscriber against an upstream that skips,
// repeats and invents notifications: each is counted for what it is.
func TestLoadgenFanoutCounts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			_, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			var req struct {
				ID     int    `json:"id"`
				Method string `json:"method"`
			}
			json.Unmarshal(b, &req)
			reply := func(s string) { c.Write(r.Context(), websocket.MessageText, []byte(s)) }
			switch req.Method {
			case "eth_subscribe":
				reply(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":"0xs"}`, req.ID))
				now := time.Now().UnixNano()
				for _, seq := range []int{1, 2, 2, 4, 99} { // 3 missing, 2 twice, 99 beyond count
					reply(fmt.Sprintf(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xs","result":{"seq":%d,"due":%d}}}`, seq, now))
				}
			case "eth_unsubscribe":
				reply(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":true}`, req.ID))
			default:
				reply(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":"0x1"}`, req.ID))
			}
		}
	}))
	defer srv.Close()
	lc := loadConfig{mode: modeFanout, conns: 1, duration: time.Second, notify: 4, grace: 200 * time.Millisecond}
	r, err := runFanout(ctx, "edge", "ws"+strings.TrimPrefix(srv.URL, "http"), lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := r.report()
	if rep.Notified != 4 || rep.Delivered != 3 || rep.Missing != 1 || rep.Duplicates != 1 || rep.Messages != 5+4 {
		t.Fatalf("report %+v: want 4 notified, 3 delivered, 1 missing, 1 duplicate, 9 messages", rep)
	}
}

// TestLoadgenCPUWatchChildren charges a child's CPU to its parent's watch only
// with children, and after the child exited too.
func TestLoadgenCPUWatchChildren(t *testing.T) {
	own := &cpuWatch{pids: []int{os.Getpid()}}
	tree := &cpuWatch{pids: []int{os.Getpid()}, children: true}
	own0, _, err := own.total()
	if err != nil {
		t.Fatal(err)
	}
	tree0, _, err := tree.total()
	if err != nil {
		t.Fatal(err)
	}
	// A child that burns CPU, then exits and is reaped: its own rusage says
	// how much, however busy the machine is.
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done`)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	child := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if child < 50*time.Millisecond {
		t.Fatalf("the child used only %s; the test needs a measurable amount", child)
	}
	own1, _, _ := own.total()
	tree1, n, _ := tree.total()
	// /proc counts in ticks of 10 ms: allow two of rounding.
	if d := tree1 - tree0; d < child-2*clockTick {
		t.Fatalf("with children the watch saw %s of the child's %s", d, child)
	}
	if d := own1 - own0; d > child/2 {
		t.Fatalf("without children the watch saw %s of the child's %s", d, child)
	}
	if n < 1 {
		t.Fatalf("%d processes", n)
	}
	if _, _, err := (&cpuWatch{pids: []int{cmd.Process.Pid}}).total(); err == nil {
		t.Fatalf("watching exited process %d: no error", cmd.Process.Pid)
	}
}

func TestLoadgenPIDList(t *testing.T) {
	var p pidList
	if err := p.Set("12,34"); err != nil {
		t.Fatal(err)
	}
	if err := p.Set("56"); err != nil {
		t.Fatal(err)
	}
	if p.String() != "12,34,56" {
		t.Fatalf("pids %s", p.String())
	}
	if err := p.Set("12,x"); err == nil {
		t.Fatal("accepted x as a pid")
	}
}

// TestLoadgenJSON runs `loadgen ws --closed-loop --json` as a script does
// and decodes its one line per target.
func TestLoadgenJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := simNode(t)
	var out, errw bytes.Buffer
	code := run(ctx, []string{"loadgen", "ws", "--closed-loop", "--json", "--conns", "2", "--duration", "200ms", "--warmup", "20ms",
		"--method", "eth_call", "--params", `[{"to":"0x00000000000000000000000000000000000000aa"},"latest"]`,
		"--upstream", url, "--edge", url, "--edge-pid", fmt.Sprint(os.Getpid())}, stdio{in: strings.NewReader(""), out: &out, err: &errw})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errw.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout has %d lines, want one JSON object per target:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		var rep loadReport
		if err := json.Unmarshal([]byte(l), &rep); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, l)
		}
		want := []string{"direct", "edge"}[i]
		if rep.Target != want || rep.Mode != modeClosedLoop || rep.OK == 0 || rep.Messages != 2*rep.OK || rep.P99us < rep.P50us || rep.P50us <= 0 {
			t.Fatalf("line %d: %+v", i, rep)
		}
		if (rep.CPU != nil) != (want == "edge") {
			t.Fatalf("line %d (%s): cpu %+v; only the edge is watched", i, want, rep.CPU)
		}
	}
	if !strings.Contains(errw.String(), "closed loop") {
		t.Fatalf("the text report did not go to stderr: %q", errw.String())
	}
}

// TestLoadgenUpstream serves the simulated node from `loadgen upstream` and
// calls it at the URL it prints.
func TestLoadgenUpstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"loadgen", "upstream", "--listen", "127.0.0.1:0", "--log-level", "warn"}, stdio{out: pw, err: io.Discard})
		pw.Close()
	}()
	var line string
	buf := make([]byte, 256)
	n, _ := pr.Read(buf)
	line = strings.TrimSpace(string(buf[:n]))
	go io.Copy(io.Discard, pr)
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "upstream" || !strings.HasPrefix(f[1], "ws://127.0.0.1:") {
		t.Fatalf("printed %q, want \"upstream ws://127.0.0.1:PORT/\"", line)
	}
	c, err := ethsim.Dial(ctx, f[1])
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.Call(ctx, "eth_call", map[string]string{"to": "0x00"}, "latest"); err != nil || len(res) != 68 {
		t.Fatalf("eth_call = %s, %v", res, err)
	}
	c.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("loadgen upstream exited %d", code)
	}
}
