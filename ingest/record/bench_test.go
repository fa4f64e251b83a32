package record_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
)

// benchMessage is a ~300-byte message event, as the edge records a small
// JSON-RPC call.
func benchMessage() *event.Message {
	payload := make([]byte, 200)
	for i := range payload {
		payload[i] = 'a'
	}
	captured, sum := record.Payload(-1, payload)
	return &event.Message{Direction: event.Direction_CLIENT_TO_UPSTREAM, Role: event.Role_REQUEST, Method: "eth_blockNumber", RpcId: "1",
		WireSize: 200, PayloadSize: 200, Payload: captured, PayloadSha256: sum[:]}
}

// startBench starts an in-process broker for benchmarks that acknowledges
// produces without storing them, so that its log does not dominate the
// CPU figures (the broker's protocol work still counts); with
// KAFKA_BROKERS set it uses those brokers instead.
func startBench(b *testing.B, partitions int) *kafkatest.Cluster {
	b.Helper()
	if os.Getenv("KAFKA_BROKERS") != "" {
		return start(b, partitions)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), topic), kfake.BlackholeProduce())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return &kafkatest.Cluster{Brokers: c.ListenAddrs(), Fake: c}
}

// BenchmarkRecord records message events from parallel streams without
// waiting for each (open loop), flush included; it reports events/s and
// allocations.
func BenchmarkRecord(b *testing.B) {
	c := startBench(b, 4)
	r := newRecorder(b, c, nil)
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
		for pb.Next() {
			if err := s.Record(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
		if err := s.Close(ctx, nil); err != nil {
			b.Error(err)
		}
	})
	if err := r.Close(ctx); err != nil {
		b.Fatal(err)
	}
	st := r.Stats()
	b.ReportMetric(float64(cpuTime()-startCPU)/float64(st.Written), "cpu-ns/event")
	b.ReportMetric(float64(st.Written)/float64(st.Batches), "events/batch")
	b.ReportMetric(float64(st.Written)/time.Since(startT).Seconds(), "events/s")
}

// BenchmarkDurable is the edge's default path: each stream appends an event
// and waits until it is durable before the next (closed loop), as a client
// that sends a request after the previous answer. It reports the round
// trip's p50 and p99, events/s over all streams, and process CPU per event
// (the in-process broker's share included).
func BenchmarkDurable(b *testing.B) {
	for _, streams := range []int{1, 64} {
		b.Run(benchName(streams), func(b *testing.B) {
			c := startBench(b, 4)
			r := newRecorder(b, c, nil)
			runDurable(b, r, streams)
			if err := r.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func benchName(streams int) string {
	if streams == 1 {
		return "streams=1"
	}
	return "streams=64"
}

// runDurable drives streams closed-loop streams through b.N round trips of
// Append and WaitDurable in total, and reports the figures.
func runDurable(b *testing.B, r *record.Recorder, streams int) {
	ctx := context.Background()
	m := benchMessage()
	ss := make([]*record.Stream, streams)
	for i := range ss {
		s, err := r.Open(ctx, &event.StreamOpened{Protocol: event.Protocol_WEBSOCKET_JSONRPC, Service: "eth"})
		if err != nil {
			b.Fatal(err)
		}
		// Warm up: connections, metadata, buffers.
		for range 3 {
			seq, err := s.Append(ctx, m)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.WaitDurable(ctx, seq); err != nil {
				b.Fatal(err)
			}
		}
		ss[i] = s
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	lat := make([][]time.Duration, streams)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	startT, startCPU := time.Now(), cpuTime()
	for i, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				t0 := time.Now()
				seq, err := s.Append(ctx, m)
				if err == nil {
					err = s.WaitDurable(ctx, seq)
				}
				if err != nil {
					b.Error(err)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(startT), cpuTime()-startCPU
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu)/float64(len(all))/1e3, "cpu-µs/event")
	for _, s := range ss {
		if err := s.Close(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the process's user and system CPU time so far, in ns; it
// includes the in-process broker's share.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
