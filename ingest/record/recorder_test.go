package record_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/internal/eventtest"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
)

const topic = record.DefaultTopic

func start(t testing.TB, partitions int) *kafkatest.Cluster {
	return kafkatest.Start(t, kafkatest.Options{Partitions: partitions, Topics: []string{topic}})
}

func newRecorder(t testing.TB, c *kafkatest.Cluster, mod func(*record.Config)) *record.Recorder {
	t.Helper()
	cfg := record.Config{Brokers: c.Brokers, EdgeID: "edge-test", RetryBackoffMin: 5 * time.Millisecond, RetryBackoffMax: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	r, err := record.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func msg(dir event.Direction, i int) *event.Message {
	p := []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_blockNumber"}`, i))
	captured, sum := record.Payload(-1, p)
	return &event.Message{Direction: dir, Role: event.Role_REQUEST, Method: "eth_blockNumber", RpcId: fmt.Sprint(i),
		WireSize: uint64(len(p)), PayloadSize: uint64(len(p)), Payload: captured, PayloadSha256: sum[:]}
}

// TestRoundTrip records streams from two goroutines each and reads them
// back: every event is there once, in seq order, chained, with counts.
func TestRoundTrip(t *testing.T) {
	c := start(t, 3)
	reg := prometheus.NewRegistry()
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.Registerer = reg })
	ctx := context.Background()
	const streams, perDir = 5, 40
	var wg sync.WaitGroup
	for range streams {
		s, err := r.Open(ctx, &event.StreamOpened{Protocol: event.Protocol_WEBSOCKET_JSONRPC, Service: "eth", Application: "app"})
		if err != nil {
			t.Fatal(err)
		}
		var dirs sync.WaitGroup
		for _, d := range []event.Direction{event.Direction_CLIENT_TO_UPSTREAM, event.Direction_UPSTREAM_TO_CLIENT} {
			dirs.Add(1)
			go func() {
				defer dirs.Done()
				for i := range perDir {
					if err := s.Record(ctx, msg(d, i)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs.Wait()
			if err := s.Close(ctx, &event.StreamClosed{Reason: "done", CloseCode: 1000}); err != nil {
				t.Error(err)
			}
			if err := s.Record(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, 0)); !errors.Is(err, record.ErrClosed) {
				t.Errorf("record after close: %v, want ErrClosed", err)
			}
		}()
	}
	wg.Wait()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(ctx, &event.StreamOpened{}); !errors.Is(err, record.ErrClosed) {
		t.Errorf("open after close: %v, want ErrClosed", err)
	}
	got := eventtest.StreamEvents(t, eventtest.ReadTopic(t, c.Brokers, topic, 3))
	if len(got) != streams {
		t.Fatalf("%d streams, want %d", len(got), streams)
	}
	for id, evs := range got {
		if len(evs) != 2*perDir+2 {
			t.Fatalf("stream %s: %d events, want %d", id, len(evs), 2*perDir+2)
		}
		if evs[0].GetOpened() == nil || evs[len(evs)-1].GetClosed() == nil {
			t.Fatalf("stream %s not bracketed by opened and closed", id)
		}
		var up, down [2]uint64
		next := map[event.Direction]int{}
		for _, ev := range evs[1 : len(evs)-1] {
			m := ev.GetMessage()
			if ev.EdgeId != "edge-test" || ev.ObservedAt == 0 {
				t.Fatalf("edge id %q observed at %d", ev.EdgeId, ev.ObservedAt)
			}
			if m.RpcId != fmt.Sprint(next[m.Direction]) {
				t.Fatalf("stream %s %v: id %s, want %d (reordered)", id, m.Direction, m.RpcId, next[m.Direction])
			}
			if sha256.Sum256(m.Payload) != [32]byte(m.PayloadSha256) {
				t.Fatal("payload sha256 does not match")
			}
			next[m.Direction]++
			if m.Direction == event.Direction_CLIENT_TO_UPSTREAM {
				up[0]++
				up[1] += m.WireSize
			} else {
				down[0]++
				down[1] += m.WireSize
			}
		}
		cl := evs[len(evs)-1].GetClosed()
		if cl.MessagesToUpstream != up[0] || cl.BytesToUpstream != up[1] || cl.MessagesToClient != down[0] || cl.BytesToClient != down[1] || cl.CloseCode != 1000 {
			t.Fatalf("closed %+v, counted up %v down %v", cl, up, down)
		}
	}
	st := r.Stats()
	want := uint64(streams * (2*perDir + 2))
	if st.Recorded != want || st.Written != want || st.Failed != 0 || st.Buffered != 0 || st.StreamsOpen != 0 {
		t.Fatalf("stats %+v, want %d recorded and written", st, want)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "relaymeter_recorder_events_written_total" {
			found = mf.GetMetric()[0].GetCounter().GetValue() == float64(want)
		}
	}
	if !found {
		t.Error("relaymeter_recorder_events_written_total missing or wrong")
	}
}

// TestBackPressure blocks the broker: Record blocks once the buffer is full
// (and a Record whose context ends takes no seq), then completes when the
// broker recovers, with nothing lost or reordered.
func TestBackPressure(t *testing.T) {
	c := start(t, 1)
	const buffer, batch = 4, 2
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.BufferEvents, cfg.BatchSize = buffer, batch })
	ctx := context.Background()
	s, err := r.Open(ctx, &event.StreamOpened{Service: "eth"})
	if err != nil {
		t.Fatal(err)
	}
	// Let the open event through so the writer has metadata, then block.
	if err := s.Record(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, 0)); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var blocked sync.Once
	c.Fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		blocked.Do(func() { c.Fake.SleepControl(func() { <-release }) })
		return nil, nil, false
	})
	recorded := 1
	var blockErr error
	for i := 1; i < 100; i++ {
		rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		err := s.Record(rctx, msg(event.Direction_CLIENT_TO_UPSTREAM, i))
		cancel()
		if err != nil {
			blockErr = err
			break
		}
		recorded++
	}
	if !errors.Is(blockErr, context.DeadlineExceeded) {
		t.Fatalf("Record with the broker blocked: %v, want a deadline error", blockErr)
	}
	// Opened + what fits: the buffer, one batch in flight, the two sent
	// before the block.
	if recorded > buffer+batch+2 {
		t.Fatalf("%d events accepted with the broker blocked, buffer %d batch %d", recorded, buffer, batch)
	}
	done := make(chan error, 1)
	go func() {
		for i := recorded; i < recorded+20; i++ {
			if err := s.Record(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := eventtest.StreamEvents(t, eventtest.ReadTopic(t, c.Brokers, topic, 1))
	evs := got[s.ID()]
	if want := 1 + recorded + 20 + 1 - 1; len(evs) != want+1 {
		t.Fatalf("%d events, want %d", len(evs), want+1)
	}
	for i, ev := range evs[1 : len(evs)-1] {
		if id := ev.GetMessage().RpcId; id != fmt.Sprint(i) {
			t.Fatalf("message %d has id %s", i, id)
		}
	}
}

// TestBrokerErrors fails some produce requests of one partition: the
// failed events are retried, nothing is lost and order is kept.
func TestBrokerErrors(t *testing.T) {
	c := start(t, 3)
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.BatchSize = 16 })
	ctx := context.Background()
	var ss []*record.Stream
	for range 12 {
		s, err := r.Open(ctx, &event.StreamOpened{Service: "eth"})
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	h := c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Partitions: []int32{1}, Err: kerr.NotEnoughReplicas, Count: 5})
	for i := range 30 {
		for _, s := range ss {
			if err := s.Record(ctx, msg(event.Direction_UPSTREAM_TO_CLIENT, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range ss {
		if err := s.Close(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if h.Hits() != 5 {
		t.Fatalf("fault hit %d times, want 5", h.Hits())
	}
	st := r.Stats()
	if st.Retried == 0 || st.WriteErrors == 0 || st.Failed != 0 {
		t.Fatalf("stats %+v: want retries and write errors, no failures", st)
	}
	got := eventtest.StreamEvents(t, eventtest.ReadTopic(t, c.Brokers, topic, 3))
	for _, s := range ss {
		evs := got[s.ID()]
		if len(evs) != 32 {
			t.Fatalf("stream %s: %d events, want 32", s.ID(), len(evs))
		}
		for i, ev := range evs[1:31] {
			if id := ev.GetMessage().RpcId; id != fmt.Sprint(i) {
				t.Fatalf("message %d has id %s", i, id)
			}
		}
	}
}

// TestCloseBrokerDown: Close with the broker refusing everything gives up
// when its context ends and reports the events not delivered.
func TestCloseBrokerDown(t *testing.T) {
	c := start(t, 1)
	r := newRecorder(t, c, nil)
	ctx := context.Background()
	c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	s, err := r.Open(ctx, &event.StreamOpened{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := s.Record(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, i)); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := r.Close(cctx); err == nil {
		t.Fatal("Close with the broker down succeeded")
	}
	if st := r.Stats(); st.Failed != 11 || st.Written != 0 || st.Buffered != 0 {
		t.Fatalf("stats %+v, want 11 failed", st)
	}
}

// TestEventTooLarge: an oversized event is refused and takes no seq.
func TestEventTooLarge(t *testing.T) {
	c := start(t, 1)
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.MaxEventBytes = 1000 })
	ctx := context.Background()
	s, err := r.Open(ctx, &event.StreamOpened{})
	if err != nil {
		t.Fatal(err)
	}
	big := &event.Message{Direction: event.Direction_CLIENT_TO_UPSTREAM, Payload: make([]byte, 2000)}
	if err := s.Record(ctx, big); !errors.Is(err, record.ErrEventTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	if err := s.Record(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs := eventtest.StreamEvents(t, eventtest.ReadTopic(t, c.Brokers, topic, 1))[s.ID()]
	if len(evs) != 3 || evs[2].GetClosed().MessagesToUpstream != 1 {
		t.Fatalf("%d events, want 3 with one message counted", len(evs))
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  record.Config
		ok   bool
	}{
		{"ok", record.Config{Brokers: []string{"x:9092"}, EdgeID: "e"}, true},
		{"no brokers", record.Config{EdgeID: "e"}, false},
		{"no edge", record.Config{Brokers: []string{"x:9092"}}, false},
		{"event beyond batch", record.Config{Brokers: []string{"x:9092"}, EdgeID: "e", BatchBytes: 1000, MaxEventBytes: 2000}, false},
		{"negative", record.Config{Brokers: []string{"x:9092"}, EdgeID: "e", BufferEvents: -1}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}

func TestPayload(t *testing.T) {
	p := []byte("0123456789")
	sum := sha256.Sum256(p)
	for _, tc := range []struct {
		capture int64
		want    string
	}{{-1, "0123456789"}, {0, ""}, {4, "0123"}, {10, "0123456789"}, {100, "0123456789"}} {
		got, s := record.Payload(tc.capture, p)
		if string(got) != tc.want || s != sum {
			t.Errorf("Payload(%d) = %q", tc.capture, got)
		}
	}
	big := make([]byte, record.MaxCapture+10)
	if got, _ := record.Payload(-1, big); len(got) != record.MaxCapture {
		t.Errorf("whole capture of %d bytes kept %d", len(big), len(got))
	}
}
