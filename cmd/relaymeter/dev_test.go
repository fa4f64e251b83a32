package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// devProcess is `relaymeter dev` running as a child process.
type devProcess struct {
	cmd       *exec.Cmd
	api, edge string // http://host:port, ws://host:port
	exited    chan struct{}
}

// buildBinary builds relaymeter once for the tests that run it as a process.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "relaymeter")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startDev(t *testing.T, bin, dataDir string, extra ...string) *devProcess {
	t.Helper()
	args := append([]string{"dev", "--data-dir", dataDir, "--http", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0",
		"--admin-key", "kill-test-key", "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProcess{cmd: cmd, exited: make(chan struct{})}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.kill() })
	timeout := time.After(90 * time.Second)
	for p.api == "" || p.edge == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited before it was ready:\n%s", stderr.String())
			}
			f := strings.Fields(l)
			switch {
			case len(f) >= 2 && f[0] == "GraphiQL":
				p.api = strings.TrimSuffix(f[1], "/")
			case len(f) >= 2 && f[0] == "ws" && f[1] == "edge":
				p.edge = strings.TrimSuffix(f[2], "/<application>")
			}
		case <-timeout:
			t.Fatalf("dev did not print its addresses:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return p
}

// kill ends the process abruptly: no graceful close of anything.
func (p *devProcess) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// TestDevSurvivesKill kills the whole dev process (edge, recorder, embedded
// Kafka and meter; its Postgres child is stopped with it) in the middle of
// a stream, starts it again on the same data dir, and checks that usage
// counts every message that crossed the edge exactly once.
func TestDevSurvivesKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := buildBinary(t)
	dataDir := t.TempDir()
	// The private Postgres runs as the postgres user when the tests run as
	// root; let it reach the data dir.
	os.Chmod(filepath.Dir(dataDir), 0o755)
	os.Chmod(dataDir, 0o755)

	dev := startDev(t, bin, dataDir, strings.Fields(os.Getenv("RELAYMETER_TEST_DEV_FLAGS"))...)
	c, err := ethsim.Dial(ctx, dev.edge+"/kill-app")
	if err != nil {
		t.Fatal(err)
	}
	answered := 0
	for i := 0; i < 300; i++ {
		if i == 150 {
			// Kill while the next calls are in flight.
			go func() { time.Sleep(time.Millisecond); dev.kill() }()
		}
		if _, err := c.Call(ctx, "eth_blockNumber"); err != nil {
			break
		}
		answered++
	}
	dev.kill()
	if answered < 150 || answered >= 300 {
		t.Fatalf("%d calls answered; the kill did not land mid-stream", answered)
	}

	dev = startDev(t, bin, dataDir)
	// Each answered call is a request and a response that crossed the edge;
	// the call in flight at the kill may have crossed it in part (a request
	// forwarded, a response recorded but not delivered).
	first := waitUsage(t, ctx, dev.api, "kill-test-key", `{application:"kill-app"}`, int64(2*answered))
	if first.Messages > int64(2*answered+2) {
		t.Fatalf("after the kill usage counts %d messages; %d calls were answered (at most %d messages crossed)", first.Messages, answered, 2*answered+2)
	}
	// Nothing more arrives later (no double count from a replay).
	time.Sleep(2 * time.Second)
	again := waitUsage(t, ctx, dev.api, "kill-test-key", `{application:"kill-app"}`, first.Messages)
	if again != first {
		t.Fatalf("usage moved from %+v to %+v with no traffic", first, again)
	}

	// A clean second phase adds exactly what crosses.
	c2, err := ethsim.Dial(ctx, dev.edge+"/kill-app")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := c2.Call(ctx, "eth_chainId"); err != nil {
			t.Fatal(err)
		}
	}
	c2.Close()
	want := first.Messages + 100
	got := waitUsage(t, ctx, dev.api, "kill-test-key", `{application:"kill-app"}`, want)
	if got.Messages != want || got.Relays != want || got.Units != want {
		t.Fatalf("after the second phase usage = %+v, want %d messages, relays and units", got, want)
	}
}
