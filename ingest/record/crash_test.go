package record_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/internal/eventtest"
)

// The kill -9 test runs a recorder in a child process: this test binary
// again, with these variables set, which TestMain hands to crashChild.
const (
	childBrokers = "RECORD_TEST_CHILD_BROKERS"
	childSpool   = "RECORD_TEST_CHILD_SPOOL"
)

var crashSeed = flag.Uint64("record.seed", 0, "seed of TestKill9 (0: a new one, printed on failure)")

func TestMain(m *testing.M) {
	if os.Getenv(childBrokers) != "" {
		crashChild(os.Getenv(childBrokers), os.Getenv(childSpool))
		return
	}
	os.Exit(m.Run())
}

// crashChild records streams that append and wait for durability over and
// over, printing "durable <stream> <seq>" once each seq is durable, until
// the process is killed.
func crashChild(brokers, dir string) {
	r, err := record.New(record.Config{Brokers: strings.Split(brokers, ","), EdgeID: "edge-child", SpoolDir: dir,
		SpoolAfter: 100 * time.Millisecond, RetryBackoffMin: 5 * time.Millisecond, RetryBackoffMax: 50 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	var out sync.Mutex
	for range 4 {
		s, err := r.Open(ctx, &event.StreamOpened{Service: "eth"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		go func() {
			for i := 0; ; i++ {
				seq, err := s.Append(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, i))
				if err == nil {
					err = s.WaitDurable(ctx, seq)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "durable %s %d\n", s.ID(), seq)
				out.Unlock()
			}
		}()
	}
	select {}
}

// TestKill9 kills a recording process with SIGKILL while it spools (Kafka
// refusing produces) or, in some runs, just after Kafka came back and the
// spool began to drain; a seed picks which and when. A new recorder on the
// same spool directory then sends what was left: every seq the dead
// process reported durable is in the topic, streams stay gapless and
// chained, and a resend leaves only exact duplicates.
func TestKill9(t *testing.T) {
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d (rerun with -record.seed=%d)", seed, seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, 0))
	killAt := 100 + rng.IntN(400)
	recoverAt := -1 // never: killed while spooling
	if rng.IntN(2) == 1 {
		recoverAt = killAt
		killAt += 1 + rng.IntN(200)
	}

	const partitions = 4
	c := start(t, partitions)
	dir := t.TempDir()
	h := c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childBrokers+"="+strings.Join(c.Brokers, ","), childSpool+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	durable := map[uuid.UUID]uint64{} // the highest seq reported per stream
	lines, killed := 0, false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var id uuid.UUID
		var seq uint64
		var ids string
		if _, err := fmt.Sscanf(sc.Text(), "durable %s %d", &ids, &seq); err != nil {
			t.Fatalf("child said %q: %v", sc.Text(), err)
		}
		if id, err = uuid.Parse(ids); err != nil {
			t.Fatal(err)
		}
		durable[id] = max(durable[id], seq)
		lines++
		if lines == recoverAt {
			h.Remove()
		}
		if lines == killAt && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed || err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child ended after %d lines: %v (killed: %v)\n%s", lines, err, killed, stderr.String())
	}
	h.Remove()
	t.Logf("killed after %d durable seqs (%s) over %d streams", lines,
		map[bool]string{true: "draining", false: "spooling"}[recoverAt > 0], len(durable))

	var logs logBuffer
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.SpoolDir, cfg.Logger = dir, logs.logger() })
	ctx, cancel := context.WithTimeout(context.Background(), liveness)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, dups := eventtest.StreamEventsDedup(t, eventtest.ReadTopic(t, c.Brokers, topic, partitions))
	if len(durable) != 4 {
		t.Fatalf("child reported %d streams, want 4", len(durable))
	}
	for id, seq := range durable {
		if n := uint64(len(got[id])); n < seq {
			t.Errorf("stream %s: %d events in the topic, but seq %d was reported durable", id, n, seq)
		}
	}
	if st := r.Stats(); st.Failed != 0 || st.Rejected != 0 || st.Buffered != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%d exact duplicates; torn tails: %q", dups, logs.lines("torn tail"))
}
