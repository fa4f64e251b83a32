package record_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/internal/eventtest"
)

// TestKafkaOutage keeps streams appending and waiting for durability the
// whole time while Kafka first refuses every produce, then recovers, then
// goes away entirely (the broker stopped) and comes back on the same port:
// every append and wait succeeds, the spool takes the events while Kafka
// cannot, and afterwards the topic holds every event of every stream, in
// seq order per stream, chained, with nothing but exact duplicates.
func TestKafkaOutage(t *testing.T) {
	const partitions, streams = 4, 6
	k := startRestartable(t, partitions)
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	r, err := record.New(record.Config{Brokers: k.brokers, EdgeID: "edge-test", SpoolDir: dir, Registerer: reg,
		SpoolAfter: 200 * time.Millisecond, RetryBackoffMin: 5 * time.Millisecond, RetryBackoffMax: 50 * time.Millisecond,
		WriteTimeout: 2 * time.Second, MetadataRefresh: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := startWorkload(t, r, streams)
	w.progress("progress with Kafka up", 20)

	// Kafka refuses every produce: the events go to the spool.
	spooledBefore := r.Stats().Spooled
	h := k.fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	w.progress("progress while Kafka refuses produces", 40)
	if !r.Stats().Spooling {
		t.Fatal("not spooling while Kafka refuses every produce")
	}
	if n := r.Stats().Spooled - spooledBefore; n < 40*streams {
		t.Fatalf("%d events spooled while Kafka refused produces, want at least %d", n, 40*streams)
	}
	h.Remove()
	waitFor(t, "the spool to drain", func() bool { return !r.Stats().Spooling })
	w.progress("progress after the refusals", 20)

	// The broker goes away, then comes back on the same port.
	spooledBefore = r.Stats().Spooled
	k.down()
	w.progress("progress with the broker down", 40)
	if n := r.Stats().Spooled - spooledBefore; n < 40*streams {
		t.Fatalf("%d events spooled with the broker down, want at least %d", n, 40*streams)
	}
	k.up(partitions)
	waitFor(t, "the spool to drain after the restart", func() bool { return !r.Stats().Spooling })
	w.progress("progress after the restart", 20)

	durable := w.finish()
	ctx, cancel := context.WithTimeout(context.Background(), liveness)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var want uint64
	for _, n := range durable {
		want += uint64(n) + 2
	}
	st := r.Stats()
	if st.Recorded != want || st.Written+st.Spooled != want || st.Drained != st.Spooled || st.Failed != 0 || st.Rejected != 0 || st.Buffered != 0 {
		t.Fatalf("stats %+v: want %d recorded, each written or spooled once, every spooled one drained", st, want)
	}
	for name, v := range map[string]uint64{
		"relaymeter_recorder_events_spooled_total": st.Spooled,
		"relaymeter_recorder_events_drained_total": st.Drained,
		"relaymeter_recorder_spool_bytes":          0,
		"relaymeter_recorder_spooling":             0,
	} {
		if got := metric(t, reg, name); got != float64(v) {
			t.Errorf("%s = %v, want %d", name, got, v)
		}
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) != 0 {
		t.Errorf("spool segments left after the drain: %v", segs)
	}
	got, dups := eventtest.StreamEventsDedup(t, eventtest.ReadTopic(t, k.brokers, topic, partitions))
	checkStreams(t, got, w.streams, durable)
	t.Logf("%d events, %d spooled, %d exact duplicates in the topic", want, st.Spooled, dups)
}

// checkStreams checks that got holds each stream's events exactly: opened,
// its messages in order, closed.
func checkStreams(t testing.TB, got map[uuid.UUID][]*event.Event, streams []*record.Stream, messages []int64) {
	t.Helper()
	if len(got) != len(streams) {
		t.Fatalf("%d streams in the topic, want %d", len(got), len(streams))
	}
	for i, s := range streams {
		evs := got[s.ID()]
		if int64(len(evs)) != messages[i]+2 {
			t.Fatalf("stream %s: %d events, want %d", s.ID(), len(evs), messages[i]+2)
		}
		if evs[0].GetOpened() == nil || evs[len(evs)-1].GetClosed() == nil {
			t.Fatalf("stream %s not bracketed by opened and closed", s.ID())
		}
		for j, ev := range evs[1 : len(evs)-1] {
			if id := ev.GetMessage().GetRpcId(); id != fmt.Sprint(j) {
				t.Fatalf("stream %s: message %d has id %s", s.ID(), j, id)
			}
		}
	}
}

// TestAckLost: Kafka takes produces but answers REQUEST_TIMED_OUT, so the
// recorder resends what already landed: every event is in the topic at
// least once, every duplicate is exact, and there is a duplicate for each
// lost acknowledgement at least. With a spool the streams keep going
// meanwhile; without one they wait, with appends still accepted.
func TestAckLost(t *testing.T) {
	for _, spool := range []bool{true, false} {
		t.Run(fmt.Sprintf("spool=%v", spool), func(t *testing.T) {
			const partitions, streams = 2, 4
			c := start(t, partitions)
			r := newRecorder(t, c, func(cfg *record.Config) {
				if spool {
					cfg.SpoolDir = t.TempDir()
					cfg.SpoolAfter = 200 * time.Millisecond
				}
			})
			ctx := context.Background()
			h := c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: -1})
			var durable []int64
			var ss []*record.Stream
			if spool {
				w := startWorkload(t, r, streams)
				w.progress("progress with acknowledgements lost", 30)
				h.Remove()
				durable, ss = w.finish(), w.streams
			} else {
				const n = 30
				for range streams {
					s, err := r.Open(ctx, &event.StreamOpened{Service: "eth"})
					if err != nil {
						t.Fatal(err)
					}
					for i := range n {
						if err := s.Record(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, i)); err != nil {
							t.Fatal(err)
						}
					}
					ss, durable = append(ss, s), append(durable, n)
				}
				waitFor(t, "lost acknowledgements", func() bool { return h.Hits() >= 10 })
				h.Remove()
				for _, s := range ss {
					if err := s.Close(ctx, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			cctx, cancel := context.WithTimeout(ctx, liveness)
			defer cancel()
			if err := r.Close(cctx); err != nil {
				t.Fatal(err)
			}
			hits := h.Hits()
			got, dups := eventtest.StreamEventsDedup(t, eventtest.ReadTopic(t, c.Brokers, topic, partitions))
			checkStreams(t, got, ss, durable)
			if hits == 0 || dups < hits {
				t.Fatalf("%d duplicates for %d lost acknowledgements, want at least one each", dups, hits)
			}
			if st := r.Stats(); st.Failed != 0 || st.Buffered != 0 || st.WriteErrors < uint64(hits) {
				t.Fatalf("stats %+v with %d lost acknowledgements", st, hits)
			}
		})
	}
}
