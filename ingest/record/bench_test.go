package record_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
)

// BenchmarkRecord records ~300-byte message events from parallel streams
// into kfake, flush included; it reports events/s and allocations.
func BenchmarkRecord(b *testing.B) {
	c := start(b, 4)
	r := newRecorder(b, c, nil)
	ctx := context.Background()
	payload := make([]byte, 200)
	for i := range payload {
		payload[i] = 'a'
	}
	b.ReportAllocs()
	b.ResetTimer()
	startT, startCPU := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		s, err := r.Open(ctx, &event.StreamOpened{Protocol: event.Protocol_WEBSOCKET_JSONRPC, Service: "eth"})
		if err != nil {
			b.Error(err)
			return
		}
		captured, sum := record.Payload(-1, payload)
		m := &event.Message{Direction: event.Direction_CLIENT_TO_UPSTREAM, Role: event.Role_REQUEST, Method: "eth_blockNumber", RpcId: "1",
			WireSize: 200, PayloadSize: 200, Payload: captured, PayloadSha256: sum[:]}
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
	b.ReportMetric(float64(r.Stats().Written)/time.Since(startT).Seconds(), "events/s")
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
