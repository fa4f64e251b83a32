package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/ingest/ws"
	"github.com/relaymeter/relaymeter/internal/ethsim"
	"github.com/relaymeter/relaymeter/internal/eventtest"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
)

// The chaos tests kill processes with SIGKILL at random points, trial after
// trial, and then require the ledger to hold exactly what crossed the
// edges. Every run prints its seed; -chaos.seed replays one.
var (
	chaosTrials = flag.Int("chaos.trials", 20, "kill -9 trials per chaos test")
	chaosSeed   = flag.Uint64("chaos.seed", 0, "seed for what is killed when (0: from the clock)")
)

func chaosRand(t *testing.T) *rand.Rand {
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("chaos seed %d (replay with -chaos.seed=%d)", seed, seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("failed with chaos seed %d: go test ./cmd/relaymeter -run '^%s$' -chaos.seed=%d", seed, t.Name(), seed)
		}
	})
	return rand.New(rand.NewPCG(seed, 0x5eed))
}

// process is a relaymeter subcommand running as a child process.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startProcess starts bin with args. Its output goes to a file, shown (the
// last lines of it) only when the test fails.
func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "process-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		if t.Failed() {
			// A process still running when the test failed shows where
			// each of its goroutines is.
			cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-p.exited:
			case <-time.After(5 * time.Second):
			}
		}
		p.kill()
		out.Close()
		if t.Failed() {
			t.Logf("%s %s (pid %d), last lines of its output:\n%s", bin, args[0], cmd.Process.Pid, tail(out.Name(), 400))
		}
	})
	return p
}

// tail is the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// kill ends the process with SIGKILL: nothing of it runs after.
func (p *process) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop asks the process to stop (SIGTERM) and waits.
func (p *process) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("process did not stop within 60s of SIGTERM")
	}
}

// caller is a client that calls through an edge with ids unique across all
// callers, reconnecting when its connection is lost, and keeps the ids of
// the calls answered.
type caller struct {
	url string
	id  int

	mu       sync.Mutex
	answered []string // rpc ids, as JSON text
	sent     int
}

func (c *caller) run(ctx context.Context) {
	n := 0
	for ctx.Err() == nil {
		conn, _, err := websocket.Dial(ctx, c.url, nil)
		if err != nil {
			sleepCtx(ctx, 20*time.Millisecond)
			continue
		}
		for ctx.Err() == nil {
			n++
			id := fmt.Sprintf(`"c%d-%d"`, c.id, n)
			c.mu.Lock()
			c.sent++
			c.mu.Unlock()
			if !call(ctx, conn, id) {
				break
			}
			c.mu.Lock()
			c.answered = append(c.answered, id)
			c.mu.Unlock()
		}
		conn.Close(websocket.StatusNormalClosure, "")
	}
}

// call sends one request with the given id and reports whether its answer
// came back.
func call(ctx context.Context, conn *websocket.Conn, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := `{"jsonrpc":"2.0","id":` + id + `,"method":"eth_blockNumber","params":[]}`
	if err := conn.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
		return false
	}
	_, b, err := conn.Read(ctx)
	return err == nil && strings.Contains(string(b), `"id":`+id)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// callers runs n callers against url until ctx ends.
func callers(ctx context.Context, n int, url string) ([]*caller, *sync.WaitGroup) {
	var wg sync.WaitGroup
	cs := make([]*caller, n)
	for i := range cs {
		cs[i] = &caller{url: fmt.Sprintf("%s/chaos-app-%d", url, i%3), id: i}
		wg.Go(func() { cs[i].run(ctx) })
	}
	return cs, &wg
}

// exactlyOnce checks the ledger against the topic and the callers: every
// Message event in Kafka (duplicates aside) is a messages row, once; every
// call answered crossed both ways and is there once each way; and
// usage counts exactly the messages that crossed.
//
// Calls in flight at a kill were recorded and never answered: at most
// maxInFlight such requests may be in the ledger (each caller waits for an
// answer before its next call).
func exactlyOnce(t *testing.T, pool *pgxpool.Pool, brokers []string, partitions int, cs []*caller, maxInFlight int) {
	t.Helper()
	ctx := context.Background()
	streams, dups := eventtest.StreamEventsDedup(t, eventtest.ReadTopic(t, brokers, topicMessages, partitions))
	want := 0
	for _, evs := range streams {
		for _, ev := range evs {
			if ev.GetMessage() != nil {
				want++
			}
		}
	}
	count := func(q string, args ...any) (n int64) {
		t.Helper()
		if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if got := count(`SELECT count(*) FROM messages`); got != int64(want) {
		t.Errorf("%d messages metered, %d Message events in Kafka", got, want)
	}
	if got := count(`SELECT coalesce(sum(duplicates), 0) FROM streams`); got != int64(dups) {
		t.Errorf("%d duplicates dropped, %d exact duplicates in Kafka", got, dups)
	}
	// Usage is what crossed: messages less those a close says did not.
	crossed := count(`SELECT count(*) FROM messages m JOIN streams s USING (stream_id) WHERE ` + crossedSQLForTests)
	if got := count(`SELECT coalesce(sum(messages), 0) FROM usage_minutes`); got != crossed {
		t.Errorf("usage counts %d messages, %d crossed", got, crossed)
	}
	var answered []string
	for _, c := range cs {
		c.mu.Lock()
		answered = append(answered, c.answered...)
		c.mu.Unlock()
	}
	rows, err := pool.Query(ctx, `SELECT rpc_id, direction, count(*) FROM messages WHERE rpc_id = ANY($1) GROUP BY 1, 2`, answered)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for rows.Next() {
		var id string
		var dir int16
		var n int
		if err := rows.Scan(&id, &dir, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("call %s: %d messages of direction %d, want 1", id, n, dir)
		}
		seen[id] |= 1 << dir
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	lost := 0
	for _, id := range answered {
		if seen[id] != 1<<1|1<<2 {
			lost++
			if lost <= 5 {
				t.Errorf("call %s was answered, but the ledger has only directions %b of it", id, seen[id])
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d answered calls not metered both ways", lost, len(answered))
	}
	if extra := count(`SELECT count(*) FROM messages WHERE direction = 1 AND NOT rpc_id = ANY($1)`, answered); extra > int64(maxInFlight) {
		t.Errorf("%d requests metered that were never answered; at most %d were in flight at the kills", extra, maxInFlight)
	}
	t.Logf("%d calls answered, %d Message events, %d exact duplicates in Kafka", len(answered), want, dups)
}

// crossedSQLForTests is true for a message m of stream s that crossed the
// edge, as the ledger decides it.
const crossedSQLForTests = `CASE WHEN m.direction = 2 THEN s.forwarded_to_client_seq IS NULL OR m.seq <= s.forwarded_to_client_seq
	ELSE s.forwarded_to_upstream_seq IS NULL OR m.seq <= s.forwarded_to_upstream_seq END`

// waitMetered waits until the meter has committed every record of the
// topic.
func waitMetered(t *testing.T, pool *pgxpool.Pool, brokers []string, group string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var end, stored int64
		ends, err := logEnds(ctx, brokers)
		for _, e := range ends {
			end += e
		}
		if err == nil {
			err = pool.QueryRow(ctx, `SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = $1`, group).Scan(&stored)
		}
		cancel()
		if err == nil && stored == end {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metered to offset %d of %d (%v); per partition, stored/end: %s", stored, end, err,
				partitionOffsets(pool, brokers, group))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logEnds is each partition's end offset in the events topic.
func logEnds(ctx context.Context, brokers []string) (map[int]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topicMessages}})
	if err != nil {
		return nil, err
	}
	if len(meta.Topics) != 1 {
		return nil, fmt.Errorf("metadata: %d topics", len(meta.Topics))
	}
	var reqs []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topicMessages: reqs}})
	if err != nil {
		return nil, err
	}
	ends := make(map[int]int64)
	for _, po := range res.Topics[topicMessages] {
		ends[po.Partition] = po.LastOffset
	}
	return ends, nil
}

// partitionOffsets says, per partition, the group's stored next offset
// and the log's end: what a test that waited in vain shows.
func partitionOffsets(pool *pgxpool.Pool, brokers []string, group string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := logEnds(ctx, brokers)
	if err != nil {
		return err.Error()
	}
	rows, err := pool.Query(ctx, `SELECT kafka_partition, next_offset FROM consumer_offsets WHERE group_id = $1`, group)
	if err != nil {
		return err.Error()
	}
	stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kv [2]int64, err error) {
		err = r.Scan(&kv[0], &kv[1])
		return kv, err
	})
	if err != nil {
		return err.Error()
	}
	byPart := make(map[int]int64)
	for _, kv := range stored {
		byPart[int(kv[0])] = kv[1]
	}
	var b strings.Builder
	for p := range len(ends) {
		fmt.Fprintf(&b, " %d: %d/%d", p, byPart[p], ends[p])
	}
	return b.String()
}

// storedOffsets is the sum of a group's stored next offsets.
func storedOffsets(t *testing.T, pool *pgxpool.Pool, group string) (n int64) {
	t.Helper()
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = $1`,
		group).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// freeAddr returns a loopback address no one listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestChaosMeterKill kills the meter process with SIGKILL at random points
// while traffic flows, trial after trial: each new meter resumes from what
// Postgres holds, and in the end the ledger holds exactly what crossed.
func TestChaosMeterKill(t *testing.T) {
	rng := chaosRand(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bin := buildBinary(t)
	pool, dbURL := pgtest.DB(t)
	kc := kafkatest.Start(t, kafkatest.Options{Partitions: 4, Topics: []string{topicMessages}})
	if err := syncServices(ctx, ledger.New(pool), []serviceConfig{{ID: "eth", Protocol: "WEBSOCKET_JSONRPC"}}); err != nil {
		t.Fatal(err)
	}
	// The traffic: callers through an edge in this process.
	node := ethsim.New(ethsim.Config{HeadInterval: -1})
	up, err := listen("node", "127.0.0.1:0", node)
	if err != nil {
		t.Fatal(err)
	}
	go up.serve(ctx)
	rec, err := record.New(record.Config{Brokers: kc.Brokers, Topic: topicMessages, EdgeID: "chaos"})
	if err != nil {
		t.Fatal(err)
	}
	edge, err := ws.New(ws.Config{Recorder: rec, Upstream: "ws://" + up.addr() + "/", Service: "eth", Supplier: "sup", OpenAccess: true,
		Limits: ws.Limits{MaxConnectionsPerIP: -1}}) // the callers share loopback
	if err != nil {
		t.Fatal(err)
	}
	es, err := listen("edge", "127.0.0.1:0", edge)
	if err != nil {
		t.Fatal(err)
	}
	go es.serve(ctx)
	cctx, stopCallers := context.WithCancel(ctx)
	cs, wg := callers(cctx, 6, "ws://"+es.addr())

	meterArgs := []string{"meter", "--kafka", strings.Join(kc.Brokers, ","), "--database-url", dbURL,
		"--group-session-timeout", "6s", "--log-level", "info"}
	for range *chaosTrials {
		// Kill each meter at a random point once it meters: a killed
		// member holds its partitions until its session times out (6 s,
		// the broker's least).
		before := storedOffsets(t, pool, meter.DefaultGroupID)
		m := startProcess(t, bin, meterArgs...)
		deadline := time.Now().Add(60 * time.Second)
		for storedOffsets(t, pool, meter.DefaultGroupID) == before {
			if time.Now().After(deadline) {
				t.Fatal("a meter did not commit within 60s of starting")
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(800)) * time.Millisecond)
		m.kill()
	}
	stopCallers()
	wg.Wait()
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	edge.Close(sctx)
	if err := rec.Close(sctx); err != nil {
		t.Fatal(err)
	}
	scancel()
	m := startProcess(t, bin, meterArgs...)
	waitMetered(t, pool, kc.Brokers, meter.DefaultGroupID)
	m.stop(t)
	exactlyOnce(t, pool, kc.Brokers, 4, cs, len(cs)) // the calls in flight when the callers stopped
	var closed int64
	pool.QueryRow(ctx, `SELECT count(*) FROM streams WHERE closed_at IS NULL`).Scan(&closed)
	if closed != 0 {
		t.Errorf("%d streams left open after every connection closed", closed)
	}
}

// TestChaosEdgeKill kills the edge process with SIGKILL at random points
// while callers use it, trial after trial, on half the trials while Kafka
// refuses its produce requests (so that it spools, and is killed spooling):
// every call answered is metered exactly once each way, the spool of a
// killed edge reaches Kafka from its successor, and the streams the killed
// edges never closed are closed as abandoned.
func TestChaosEdgeKill(t *testing.T) {
	rng := chaosRand(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bin := buildBinary(t)
	pool, _ := pgtest.DB(t)
	kc := kafkatest.Start(t, kafkatest.Options{Partitions: 4, Topics: []string{topicMessages}})
	store := ledger.New(pool)
	if err := syncServices(ctx, store, []serviceConfig{{ID: "eth", Protocol: "WEBSOCKET_JSONRPC"}}); err != nil {
		t.Fatal(err)
	}
	m, err := meter.New(meter.Config{Brokers: kc.Brokers, Topic: topicMessages, Store: store,
		StreamIdleTimeout: 3 * time.Second, BatchWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mctx, stopMeter := context.WithCancel(ctx)
	mdone := make(chan error, 1)
	go func() { mdone <- m.Run(mctx) }()

	node := ethsim.New(ethsim.Config{HeadInterval: -1})
	up, err := listen("node", "127.0.0.1:0", node)
	if err != nil {
		t.Fatal(err)
	}
	go up.serve(ctx)
	addr, spool := freeAddr(t), t.TempDir()
	edgeArgs := []string{"edge", "ws", "--listen", addr, "--upstream", "ws://" + up.addr() + "/", "--service", "eth",
		"--supplier", "sup", "--kafka", strings.Join(kc.Brokers, ","), "--spool-dir", spool, "--edge-id", "chaos",
		"--log-level", "error", "--open-access", "--max-connections-per-ip", "-1"} // the callers share loopback
	cctx, stopCallers := context.WithCancel(ctx)
	cs, wg := callers(cctx, 6, "ws://"+addr)
	spooled := 0
	for trial := range *chaosTrials {
		e := startProcess(t, bin, edgeArgs...)
		if trial%2 == 1 && kc.Fake != nil {
			// Kafka refuses the edge's produce requests: it spools, and is
			// killed while spooling (or draining, once the fault is gone).
			h := kc.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotLeaderForPartition, Count: -1})
			time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
			if rng.IntN(2) == 0 {
				h.Remove()
			}
			time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
			e.kill()
			h.Remove()
			spooled++
			continue
		}
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		e.kill()
	}
	e := startProcess(t, bin, edgeArgs...)
	time.Sleep(500 * time.Millisecond)
	stopCallers()
	wg.Wait()
	e.stop(t)
	entries, err := os.ReadDir(spool)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.Name() != "LOCK" {
			t.Errorf("the spool still holds %s after a clean stop", en.Name())
		}
	}
	waitMetered(t, pool, kc.Brokers, meter.DefaultGroupID)
	// The killed edges' streams: closed by the meter after 3 s idle.
	deadline := time.Now().Add(60 * time.Second)
	var open int64
	for {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM streams WHERE closed_at IS NULL`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopMeter()
	if err := <-mdone; err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Errorf("%d streams still open a minute after their edge was killed", open)
	}
	var abandoned int64
	pool.QueryRow(ctx, `SELECT count(*) FROM streams WHERE close_reason = 'abandoned'`).Scan(&abandoned)
	t.Logf("%d trials (%d with Kafka refusing), %d streams closed as abandoned", *chaosTrials, spooled, abandoned)
	if abandoned == 0 {
		t.Error("no stream was closed as abandoned: the kills did not land mid-connection")
	}
	exactlyOnce(t, pool, kc.Brokers, 4, cs, len(cs)*(*chaosTrials+1))
}

// TestChaosDevKill kills the whole dev process (edge, recorder, embedded
// Kafka and meter; its Postgres child is stopped with it) with SIGKILL at a
// random point of each trial while a caller uses it, and starts it again on
// the same data directory: every call answered is metered exactly once
// each way, and the ledger holds exactly the events of dev's Kafka.
func TestChaosDevKill(t *testing.T) {
	rng := chaosRand(t)
	bin := buildBinary(t)
	dataDir := t.TempDir()
	// The private Postgres runs as the postgres user when the tests run as
	// root; let it reach the data dir.
	os.Chmod(dataDir[:strings.LastIndexByte(dataDir, '/')], 0o755)
	os.Chmod(dataDir, 0o755)
	trials := *chaosTrials
	var cs []*caller
	for trial := range trials {
		dev := startDev(t, bin, dataDir)
		ctx, stop := context.WithCancel(context.Background())
		c := &caller{url: dev.edge + "/kill-app", id: trial}
		cs = append(cs, c)
		done := make(chan struct{})
		go func() { c.run(ctx); close(done) }()
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		dev.kill()
		stop()
		<-done
	}
	dev := startDev(t, bin, dataDir)
	pool, err := pgxpool.New(context.Background(), dev.postgres)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	waitMetered(t, pool, []string{dev.kafka}, meter.DefaultGroupID)
	exactlyOnce(t, pool, []string{dev.kafka}, 4, cs, trials)
	var answered int
	for _, c := range cs {
		answered += len(c.answered)
	}
	if answered < trials {
		t.Errorf("only %d calls answered in %d trials: the kills did not land mid-stream", answered, trials)
	}
}

// TestKafkaOutageEndToEnd: Kafka refuses the edge's produce requests for a
// while, and the traffic keeps flowing the whole time (the edge spools,
// fsynced); once Kafka is back the spool drains, and the meter holds
// exactly what crossed.
func TestKafkaOutageEndToEnd(t *testing.T) {
	testKafkaFault(t, kerr.NotLeaderForPartition, func(t *testing.T, during int) {
		if during == 0 {
			t.Error("no call was answered while Kafka refused produce requests: the traffic stopped")
		}
	})
}

// TestAckLostEndToEnd: Kafka takes the edge's produce requests but their
// answers are lost (REQUEST_TIMED_OUT after the append): the edge spools
// and resends, Kafka holds duplicates, and the meter counts each message
// once.
func TestAckLostEndToEnd(t *testing.T) {
	testKafkaFault(t, kerr.RequestTimedOut, func(*testing.T, int) {})
}

func testKafkaFault(t *testing.T, fault *kerr.Error, check func(t *testing.T, answeredDuring int)) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node := ethsim.New(ethsim.Config{HeadInterval: -1})
	up, err := listen("node", "127.0.0.1:0", node)
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestStackSpool(t, ctx, "outage", "ws://"+up.addr()+"/", t.TempDir(), up.serve)
	if ts.cluster.Fake == nil {
		t.Skip("KAFKA_BROKERS names a real cluster: this test needs kfake's fault injection")
	}
	cctx, stopCallers := context.WithCancel(ctx)
	cs, wg := callers(cctx, 4, "ws://"+ts.edge)
	answered := func() (n int) {
		for _, c := range cs {
			c.mu.Lock()
			n += len(c.answered)
			c.mu.Unlock()
		}
		return n
	}
	time.Sleep(500 * time.Millisecond)
	h := ts.cluster.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: fault, Count: -1})
	before := answered()
	time.Sleep(2 * time.Second)
	during := answered() - before
	h.Remove()
	time.Sleep(time.Second)
	stopCallers()
	wg.Wait()
	ts.settled(t) // the streams closed, the spool drained
	t.Logf("%d calls answered during the fault, %d in all", during, answered())
	check(t, during)
	waitMetered(t, ts.pool, ts.cluster.Brokers, meter.DefaultGroupID)
	exactlyOnce(t, ts.pool, ts.cluster.Brokers, 4, cs, len(cs)) // the calls in flight when the callers stopped
}
