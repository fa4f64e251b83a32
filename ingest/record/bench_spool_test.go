package record_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
)

// BenchmarkSpool is BenchmarkDurable while Kafka refuses every produce:
// each round trip ends when the event is fsynced in the spool (the test's
// temporary directory: put TMPDIR on the disk to measure). It reports the
// same figures plus events per group commit (one write and one fdatasync).
// The latency Kafka's absence adds is this p99 less BenchmarkDurable's.
func BenchmarkSpool(b *testing.B) {
	for _, streams := range []int{1, 64} {
		b.Run(benchName(streams), func(b *testing.B) {
			c := startBench(b, 4)
			r := newRecorder(b, c, func(cfg *record.Config) { cfg.SpoolDir = b.TempDir() })
			c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
			before := r.Stats()
			runDurable(b, r, streams)
			st := r.Stats()
			if st.Spooled == before.Spooled {
				b.Fatalf("nothing spooled: %+v", st)
			}
			b.ReportMetric(float64(st.Spooled-before.Spooled)/float64(st.SpoolSyncs-before.SpoolSyncs), "events/sync")
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := r.Close(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkSpoolRecord is BenchmarkRecord while Kafka refuses every
// produce: streams record without waiting, the spool's throughput with
// fsync.
func BenchmarkSpoolRecord(b *testing.B) {
	c := startBench(b, 4)
	r := newRecorder(b, c, func(cfg *record.Config) { cfg.SpoolDir = b.TempDir() })
	c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	ctx := context.Background()
	m := benchMessage()
	b.ReportAllocs()
	b.ResetTimer()
	startT, startCPU := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		s, err := r.Open(ctx, &event.StreamOpened{Protocol: event.Protocol_WEBSOCKET_JSONRPC, Service: "eth"})
		if err != nil {
			b.Error(err)
			return
		}
		var seq uint64
		for pb.Next() {
			if seq, err = s.Append(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
		if err := s.WaitDurable(ctx, seq); err != nil {
			b.Error(err)
		}
	})
	elapsed, cpu := time.Since(startT), cpuTime()-startCPU
	b.StopTimer()
	st := r.Stats()
	b.ReportMetric(float64(st.Spooled)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu)/float64(st.Spooled), "cpu-ns/event")
	b.ReportMetric(float64(st.Spooled)/float64(st.SpoolSyncs), "events/sync")
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := r.Close(cctx); err != nil {
		b.Fatal(err)
	}
}
