package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// devProcess is `relaymeter dev` running as a child process.
type devProcess struct {
	cmd       *exec.Cmd
	api, edge string // http://host:port, ws://host:port
	kafka     string // host:port of the embedded Kafka, as printed
	postgres  string // the Postgres URL, as printed
	demoKey   string // the demo application's key, as printed
	demoURL   string // ws://host:port/v1/<demo key>, as printed
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
	// The embedded Kafka on a free port, never the default 9092 that a
	// real Kafka (or another test's dev) may hold.
	args := append([]string{"dev", "--data-dir", dataDir, "--http", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0",
		"--kafka-listen", "127.0.0.1:0", "--admin-key", "kill-test-key", "--log-level", "warn"}, extra...)
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
	for p.api == "" || p.edge == "" || p.kafka == "" || p.postgres == "" || p.demoKey == "" || p.demoURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited before it was ready:\n%s", stderr.String())
			}
			f := strings.Fields(l)
			switch {
			case len(f) >= 2 && f[0] == "GraphiQL":
				p.api = strings.TrimSuffix(f[1], "/")
			case len(f) >= 3 && f[0] == "ws" && f[1] == "edge" && p.edge == "":
				// The first is the default service's; routes follow.
				p.edge = strings.TrimSuffix(f[2], "/<application>")
			case strings.HasPrefix(l, "kafka   ") && len(f) == 2:
				// The issue pinned these two lines' form: scripts read them.
				p.kafka = f[1]
			case strings.HasPrefix(l, "postgres ") && len(f) == 2:
				p.postgres = f[1]
			case len(f) == 3 && f[0] == "demo" && f[1] == "key":
				p.demoKey = f[2]
			case len(f) == 3 && f[0] == "demo" && f[1] == "url":
				p.demoURL = f[2]
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

// TestDevKafkaListen starts dev on a free Kafka port and checks what it
// prints: its Kafka address, where a kafka-go client (a separate edge, meter
// or tool) produces and reads back a record, and its Postgres URL, where a
// client connects. A second dev asked for the same port fails, saying what
// to pass instead.
func TestDevKafkaListen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := buildBinary(t)
	dataDir := t.TempDir()
	os.Chmod(filepath.Dir(dataDir), 0o755)
	os.Chmod(dataDir, 0o755)
	dev := startDev(t, bin, dataDir)

	host, port, err := net.SplitHostPort(dev.kafka)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("kafka line %q: want 127.0.0.1 and the port it picked (%v)", dev.kafka, err)
	}
	// kafka-go follows the broker address the metadata advertises: a
	// produce succeeds only if that is the printed one.
	topic := "dev-kafka-listen-probe"
	w := &kafka.Writer{Addr: kafka.TCP(dev.kafka), Topic: topic, AllowAutoTopicCreation: true,
		Balancer: kafka.BalancerFunc(func(_ kafka.Message, ps ...int) int { return ps[0] })}
	defer w.Close()
	var werr error
	for range 50 { // the first produce may race the topic's creation
		if werr = w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("through the printed address")}); werr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if werr != nil {
		t.Fatalf("produce to %s: %v", dev.kafka, werr)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{dev.kafka}, Topic: topic, Partition: 0, MaxWait: 2 * time.Second})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil || string(m.Value) != "through the printed address" {
		t.Fatalf("read back from %s: %q, %v", dev.kafka, m.Value, err)
	}

	if !strings.HasPrefix(dev.postgres, "postgres://") {
		t.Fatalf("postgres line %q: want a postgres:// URL", dev.postgres)
	}
	conn, err := pgx.Connect(ctx, dev.postgres)
	if err != nil {
		t.Fatalf("connect to the printed Postgres URL: %v", err)
	}
	var services int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM services").Scan(&services)
	conn.Close(ctx)
	if err != nil || services == 0 {
		t.Fatalf("the printed Postgres URL is not dev's database: %d services, %v", services, err)
	}

	// A second dev on the same Kafka port: a clear error, not a panic and
	// not another port.
	second := t.TempDir()
	os.Chmod(second, 0o755)
	cctx, ccancel := context.WithTimeout(ctx, time.Minute)
	defer ccancel()
	out, err := exec.CommandContext(cctx, bin, "dev", "--data-dir", second, "--http", "127.0.0.1:0", "--ws-listen", "127.0.0.1:0",
		"--kafka-listen", dev.kafka, "--log-level", "warn").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("second dev on %s: %v, want exit code 1\n%s", dev.kafka, err, out)
	}
	for _, want := range []string{dev.kafka + " is already in use", "--kafka-listen 127.0.0.1:0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("second dev on %s said:\n%s\nwant it to say %q", dev.kafka, out, want)
		}
	}
	if strings.Contains(string(out), "panic") || strings.Contains(string(out), "GraphiQL") {
		t.Errorf("second dev on %s panicked or started:\n%s", dev.kafka, out)
	}
}

// TestDevListenKafka covers the addresses dev refuses before it starts
// anything.
func TestDevListenKafka(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"0.0.0.0:0", "name an address clients can connect to"},
		{"[::]:0", "name an address clients can connect to"},
		{":9092", "name an address clients can connect to"},
		{"127.0.0.1", "want host:port"},
	} {
		ln, err := listenKafka(tc.addr)
		if err == nil {
			ln.Close()
			t.Errorf("listenKafka(%q) listened on %s; want an error", tc.addr, ln.Addr())
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("listenKafka(%q) = %v; want it to say %q", tc.addr, err, tc.want)
		}
	}
	ln, err := listenKafka("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := listenKafka(ln.Addr().String()); err == nil || !strings.Contains(err.Error(), "--kafka-listen 127.0.0.1:0") {
		t.Fatalf("a port in use: %v; want the advice to pass --kafka-listen 127.0.0.1:0", err)
	}
}

func TestDevRedactPassword(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://postgres@/relaymeter?host=%2Ftmp%2Fx&port=5432&sslmode=disable": "postgres://postgres@/relaymeter?host=%2Ftmp%2Fx&port=5432&sslmode=disable",
		"postgres://u:secret@db:5432/rm":                                            "postgres://u:REDACTED@db:5432/rm",
		"postgresql://u@db/rm?password=secret":                                      "postgresql://u@db/rm?password=REDACTED",
		"host=db user=u password=secret dbname=rm":                                  "host=db user=u password=REDACTED dbname=rm",
		"host=db password='se cret' dbname=rm":                                      "host=db password=REDACTED dbname=rm",
	} {
		if got := redactPassword(in); got != want {
			t.Errorf("redactPassword(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDevDemoKey: dev makes a demo application and its key once, prints
// both, and bills the demo application for what crosses its URL; open
// access is on by default and --open-access=false turns it off.
func TestDevDemoKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := buildBinary(t)
	dataDir := t.TempDir()
	os.Chmod(filepath.Dir(dataDir), 0o755)
	os.Chmod(dataDir, 0o755)
	dev := startDev(t, bin, dataDir)
	if !identity.LooksLikeSecret(dev.demoKey) || dev.demoURL != dev.edge+"/v1/"+dev.demoKey {
		t.Fatalf("demo key %q, url %q (edge %s)", dev.demoKey, dev.demoURL, dev.edge)
	}
	calls := func(url string, n int) error {
		c, err := ethsim.Dial(ctx, url)
		if err != nil {
			return err
		}
		defer c.Close()
		for range n {
			if _, err := c.Call(ctx, "eth_chainId"); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	}
	if err := calls(dev.demoURL, 3); err != nil {
		t.Fatalf("the demo URL: %v", err)
	}
	if err := calls(dev.edge+"/open-app", 1); err != nil {
		t.Fatalf("open access is on by default, yet: %v", err)
	}
	// The demo application is billed for what crossed its key.
	pool, err := pgxpool.New(ctx, dev.postgres)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	p, err := identity.NewRegistry(pool).Resolve(ctx, dev.demoKey)
	if err != nil || p.Role != identity.RoleApplication {
		t.Fatalf("the demo key resolves to %+v, %v", p, err)
	}
	app, err := identity.NewRegistry(pool).Application(ctx, p.Application)
	if err != nil || app.Name != "demo" {
		t.Fatalf("the demo key's application: %+v, %v", app, err)
	}
	if u := waitUsage(t, ctx, dev.api, "kill-test-key", `{application:"`+app.ID+`"}`, 6); u.Messages != 6 {
		t.Fatalf("the demo application's usage %+v, want 6 messages", u)
	}
	dev.kill()
	pool.Close()

	dev2 := startDev(t, bin, dataDir, "--open-access=false")
	if dev2.demoKey != dev.demoKey {
		t.Fatalf("a restart printed another demo key")
	}
	if err := calls(dev2.demoURL, 1); err != nil {
		t.Fatalf("the demo URL after a restart: %v", err)
	}
	_, resp, err := websocket.Dial(ctx, dev2.edge+"/open-app", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("--open-access=false, the application path: %v, %v; want 401", err, resp)
	}
}
