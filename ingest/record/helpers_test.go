package record_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
)

// liveness bounds waits for progress that must come; it is not a timing
// assertion, only a way to fail rather than hang.
const liveness = 60 * time.Second

// waitFor polls cond until it holds, failing t after liveness.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(liveness)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer collects a recorder's logs for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// lines returns the log lines containing s.
func (l *logBuffer) lines(s string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// workload runs streams that each append a message and wait until it is
// durable, over and over, as clients of an edge that forwards after the
// event is durable.
type workload struct {
	t       testing.TB
	streams []*record.Stream
	durable []atomic.Int64 // messages durable, per stream
	stop    atomic.Bool
	wg      sync.WaitGroup
}

func startWorkload(t testing.TB, r *record.Recorder, streams int) *workload {
	t.Helper()
	w := &workload{t: t, durable: make([]atomic.Int64, streams)}
	ctx := context.Background()
	for range streams {
		s, err := r.Open(ctx, &event.StreamOpened{Protocol: event.Protocol_WEBSOCKET_JSONRPC, Service: "eth"})
		if err != nil {
			t.Fatal(err)
		}
		w.streams = append(w.streams, s)
	}
	for i, s := range w.streams {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for n := 0; !w.stop.Load(); n++ {
				seq, err := s.Append(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, n))
				if err != nil {
					t.Errorf("stream %d: append %d: %v", i, n, err)
					return
				}
				wctx, cancel := context.WithTimeout(ctx, liveness)
				err = s.WaitDurable(wctx, seq)
				cancel()
				if err != nil {
					t.Errorf("stream %d: message %d not durable: %v", i, n, err)
					return
				}
				w.durable[i].Add(1)
			}
		}()
	}
	return w
}

// progress waits until every stream has made n more messages durable.
func (w *workload) progress(what string, n int64) {
	w.t.Helper()
	base := make([]int64, len(w.durable))
	for i := range w.durable {
		base[i] = w.durable[i].Load()
	}
	waitFor(w.t, what, func() bool {
		for i := range w.durable {
			if w.durable[i].Load() < base[i]+n {
				return w.t.Failed() // stop waiting once a stream has failed
			}
		}
		return true
	})
}

// finish stops the streams, closes them, and returns how many messages
// each made durable.
func (w *workload) finish() []int64 {
	w.t.Helper()
	w.stop.Store(true)
	w.wg.Wait()
	out := make([]int64, len(w.durable))
	for i, s := range w.streams {
		if err := s.Close(context.Background(), nil); err != nil {
			w.t.Fatal(err)
		}
		out[i] = w.durable[i].Load()
	}
	return out
}

// metric returns the value of a counter or gauge gathered from reg.
func metric(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// restartable is a durable kfake cluster a test can stop and start again
// on the same port, as a broker restart.
type restartable struct {
	t       testing.TB
	dir     string
	port    int
	fake    *kfake.Cluster
	brokers []string
}

func startRestartable(t testing.TB, partitions int) *restartable {
	t.Helper()
	k := &restartable{t: t, dir: t.TempDir()}
	k.up(partitions)
	addr := k.brokers[0]
	port, err := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	if err != nil {
		t.Fatal(err)
	}
	k.port = port
	t.Cleanup(func() {
		if k.fake != nil {
			k.fake.Close()
		}
	})
	return k
}

func (k *restartable) up(partitions int) {
	k.t.Helper()
	c, err := kafkatest.StartFake(kafkatest.Options{Partitions: partitions, Topics: []string{topic}, DataDir: k.dir, Port: k.port})
	if err != nil {
		k.t.Fatal(err)
	}
	k.fake, k.brokers = c, c.ListenAddrs()
}

func (k *restartable) cluster() *kafkatest.Cluster {
	return &kafkatest.Cluster{Brokers: k.brokers, Fake: k.fake}
}

func (k *restartable) down() {
	k.fake.Close()
	k.fake = nil
}
