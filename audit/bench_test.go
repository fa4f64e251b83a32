package audit

import (
	"context"
	"flag"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
)

var benchEvents = flag.Int("audit.events", 300000, "events in the topic the replay benchmarks read")

// benchTopic produces *benchEvents events of 200 interleaved streams (a
// request and a response each 10 ms apart) into a 4-partition kfake
// topic, and the service that prices them.
func benchTopic(b *testing.B) *env {
	b.Helper()
	e := newEnv(b, 4)
	if err := e.store.PutService(context.Background(), ledger.Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC"}); err != nil {
		b.Fatal(err)
	}
	const streams = 200
	gens := make([]*gen, streams)
	recs := make([]kafka.Message, 0, *benchEvents)
	for i := range gens {
		gens[i] = newGen(i)
		recs = append(recs, gens[i].open("eth", "app", "sup"))
	}
	for i := 0; len(recs) < *benchEvents-streams; i++ {
		g := gens[i%streams]
		if i/streams%2 == 0 {
			recs = append(recs, g.req(10*time.Millisecond))
		} else {
			recs = append(recs, g.resp(10*time.Millisecond))
		}
	}
	for _, g := range gens {
		recs = append(recs, g.close())
	}
	e.produce(b, recs...)
	return e
}

// BenchmarkReplay measures the replay alone: every event of the topic read
// from kfake and metered by meter.Replay, its batches handed to a function
// that only counts them (what the meter decides, without storing it).
//
//	go test ./audit -run '^$' -bench Replay -benchtime 3x
//	go test ./audit -run '^$' -bench Replay -benchtime 3x -args -audit.events=1000000
func BenchmarkReplay(b *testing.B) {
	e := benchTopic(b)
	ctx := context.Background()
	cfg := Config{Brokers: e.brokers, Pool: e.pool, StreamIdleTimeout: idle}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	sps, err := spans(ctx, e.brokers, cfg.Topic)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var events, messages int64
	began, cpu0 := time.Now(), processCPU()
	for range b.N {
		var sum Summary
		commit := func(bt *ledger.Batch) error { messages += int64(len(bt.Messages)); return nil }
		if err := replay(ctx, cfg, sps, noStreams{e.store}, commit, &sum); err != nil {
			b.Fatal(err)
		}
		events += sum.Events
	}
	elapsed, cpu := time.Since(began), processCPU()-cpu0
	b.StopTimer()
	if events != int64(b.N)*e.n {
		b.Fatalf("replayed %d events, want %d", events, int64(b.N)*e.n)
	}
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(messages)/float64(b.N), "messages/op")
	// CPU per event of this process (the replay and kfake serving it):
	// what the rate would be on free cores, whatever the neighbours do.
	b.ReportMetric(cpu.Seconds()*1e6/float64(events), "cpu-µs/event")
}

// processCPU returns the user and system CPU time this process used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAudit measures a whole audit of the topic, after a meter
// metered it: the replay committed into the scratch tables, and the
// comparison.
//
//	go test ./audit -run '^$' -bench 'Audit$' -benchtime 1x
func BenchmarkAudit(b *testing.B) {
	e := benchTopic(b)
	e.meter(b)
	b.ResetTimer()
	began := time.Now()
	var replayed time.Duration
	for range b.N {
		sum := e.audit(b, Filter{})
		if sum.Differences() != 0 {
			b.Fatalf("%d differences", sum.Differences())
		}
		replayed += sum.Replayed
	}
	elapsed := time.Since(began)
	b.ReportMetric(float64(int64(b.N)*e.n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(int64(b.N)*e.n)/replayed.Seconds(), "replay-events/s")
}

// noStreams are the ledger's services and policies, and no stored stream:
// a replay whose batches are not stored keeps every stream it needs in
// memory until it closes.
type noStreams struct{ *ledger.Store }

func (noStreams) Streams(context.Context, []uuid.UUID) ([]ledger.Stream, error) { return nil, nil }
func (noStreams) OpenStreams(context.Context, string, int32) ([]ledger.Stream, error) {
	return nil, nil
}

var _ meter.Lookups = noStreams{}
