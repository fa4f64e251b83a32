package meter

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// BenchmarkMeter measures events metered into Postgres exactly once: b.N
// Message events of 200 concurrent streams are produced into kfake (4
// partitions) before the timer starts; the timer covers a Meter consuming
// them until every offset is committed.
//
//	go test ./meter -run '^$' -bench 'Meter$' -benchtime 300000x
//	go test ./meter -run '^$' -bench 'Meter$' -benchtime 300000x -args -meter.partitions=1
//	go test ./meter -run '^$' -bench 'Meter$' -benchtime 300000x -args -meter.durable
func BenchmarkMeter(b *testing.B) {
	benchMeter(b, ledger.Policy{}, func(bool) int64 { return 1 })
}

// BenchmarkMeterPolicy is BenchmarkMeter with the service priced by the
// method and expr policies, to show what pricing costs the meter:
//
//	go test ./meter -run '^$' -bench 'MeterPolicy' -benchtime 100000x
func BenchmarkMeterPolicy(b *testing.B) {
	for _, tc := range []struct {
		name   string
		policy ledger.Policy
		units  func(request bool) int64
	}{
		{"message", ledger.Policy{}, func(bool) int64 { return 1 }},
		{"method", ledger.Policy{Name: policy.MethodName,
			Params: json.RawMessage(`{"default": 1, "methods": {"eth_call": 5, "eth_getLogs": 50}}`)},
			func(bool) int64 { return 5 }}, // the generator names every message eth_call
		{"expr", ledger.Policy{Name: policy.ExprName,
			Params: json.RawMessage(`{"expression": "direction == \"CLIENT_TO_UPSTREAM\" ? (method == \"eth_call\" ? 5 : 1) : wire_size / 200"}`)},
			func(request bool) int64 {
				if request {
					return 5
				}
				return 2 // 400 wire bytes / 200
			}},
	} {
		b.Run(tc.name, func(b *testing.B) { benchMeter(b, tc.policy, tc.units) })
	}
}

// benchMeter is BenchmarkMeter with the service priced by pol, each
// request worth units(true) and each response units(false).
func benchMeter(b *testing.B, pol ledger.Policy, units func(request bool) int64) {
	const streams = 200
	pool, _ := pgtestDB(b)
	if *benchDurable {
		_, url := pgtest.DurableServer(b)
		var err error
		if pool, err = pgxpool.New(context.Background(), url); err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
	}
	e := &env{pool: pool, store: ledger.New(pool), topic: DefaultTopic, brokers: startKafka(b, *benchPartitions, DefaultTopic)}
	if err := e.store.PutService(context.Background(), ledger.Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC", Policy: pol}); err != nil {
		b.Fatal(err)
	}
	gens := make([]*gen, streams)
	recs := make([]kafka.Message, 0, b.N+2*streams)
	for i := range gens {
		gens[i] = newGen(i)
		recs = append(recs, gens[i].open("eth", "app", "sup"))
	}
	var want int64
	for i := range b.N {
		g := gens[i%streams]
		if i/streams%2 == 0 {
			recs = append(recs, g.msg(up, 1, 120, ""))
			want += units(true)
		} else {
			recs = append(recs, g.msg(down, 2, 400, ""))
			want += units(false)
		}
	}
	for _, g := range gens {
		recs = append(recs, g.close())
	}
	e.produce(b, recs...)
	reg := prometheus.NewRegistry()
	m := e.meter(b, func(c *Config) { c.BatchSize, c.BatchWait, c.Registerer = *benchBatchSize, DefaultBatchWait, reg })
	b.ResetTimer()
	if *benchProfile != "" {
		f, err := os.Create(*benchProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	cpu0, sys0, pg0 := processCPU(), machineBusy(), pgtest.ServerCPU(context.Background(), pool)
	began := time.Now()
	r := start(m)
	e.waitCommitted(b, int64(len(recs)))
	elapsed := time.Since(began)
	cpu1, sys1, pg1 := processCPU(), machineBusy(), pgtest.ServerCPU(context.Background(), pool)
	b.StopTimer()
	r.stop(b)
	b.ReportMetric(float64(len(recs))/elapsed.Seconds(), "events/s")
	// CPU per event: this process (meter and kfake), the Postgres server
	// and the whole machine (neighbours included), where /proc tells.
	b.ReportMetric((cpu1-cpu0).Seconds()*1e6/float64(len(recs)), "go-µs/event")
	if pg0 >= 0 && pg1 >= 0 {
		b.ReportMetric((pg1-pg0).Seconds()*1e6/float64(len(recs)), "pg-µs/event")
	}
	if sys0 >= 0 && sys1 >= 0 {
		b.ReportMetric((sys1-sys0).Seconds()*1e6/float64(len(recs)), "cpu-µs/event")
	}
	if mfs, err := reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "relaymeter_meter_batch_commit_seconds" {
				h := mf.GetMetric()[0].GetHistogram()
				b.ReportMetric(float64(h.GetSampleCount()), "batches")
				b.ReportMetric(h.GetSampleSum()/elapsed.Seconds()*100, "%commit")
			}
		}
	}
	if n := e.count(b, `SELECT coalesce(sum(units), 0) FROM messages`); n != want {
		b.Fatalf("%d relays, want %d", n, want)
	}
}

// processCPU returns the user and system CPU time this process used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy returns the busy (non-idle) CPU time of the whole machine
// from /proc/stat, or -1 where it cannot be read.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for i, v := range f[1:8] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

// benchPartitions is the partition count of BenchmarkMeter's topic, e.g.
// -args -meter.partitions=1 for a single partition.
var benchPartitions = flag.Int("meter.partitions", 4, "partitions of BenchmarkMeter's topic")

// benchDurable runs BenchmarkMeter against a Postgres with fsync,
// synchronous commit and full page writes on (-args -meter.durable).
var benchDurable = flag.Bool("meter.durable", false, "BenchmarkMeter: meter into a Postgres with fsync on")

// benchProfile, when set, is where BenchmarkMeter writes a CPU profile of
// the metering alone (not of making and producing the events).
var benchProfile = flag.String("meter.cpuprofile", "", "BenchmarkMeter: write a CPU profile of the metering to this file")

// benchBatchSize is BenchmarkMeter's Config.BatchSize, e.g. -args
// -meter.batch=20000.
var benchBatchSize = flag.Int("meter.batch", DefaultBatchSize, "BenchmarkMeter's batch size")

// BenchmarkBuild measures the meter's own work per event, without Kafka
// or Postgres: decoding, checking the chain, sequencing, pricing and
// building the batch's rows, over 200 interleaved streams in batches of
// DefaultBatchSize (their streams already in memory).
//
//	go test ./meter -run '^$' -bench Build -benchmem
func BenchmarkBuild(b *testing.B) {
	const streams = 200
	e := &env{store: ledger.New(nil)} // every stream is in memory: nothing is read
	m := e.meter(b, nil)
	w := &partitionWorker{m: m, partition: 0, bl: newBuilder(m, 0)}
	gens := make([]*gen, streams)
	recs := make([]kafka.Message, 0, DefaultBatchSize)
	fallback := pricing{policy: policy.Message{}, policyID: 1, weight: 1}
	for i := range gens {
		gens[i] = newGen(i)
		g := gens[i]
		rec := g.open("eth", "app", "sup")
		var ev event.Event
		if err := event.Decode(rec.Value, &ev); err != nil {
			b.Fatal(err)
		}
		s := &stream{Stream: ledger.Stream{StreamID: g.id, Service: "eth", Application: "app", Supplier: "sup",
			LastSeq: 1, Chain: append([]byte(nil), ev.Chain...), Version: 1}, pricing: fallback, stored: true}
		w.bl.streams[g.id] = s
	}
	next := func(i int) kafka.Message {
		g := gens[i%streams]
		if i/streams%2 == 0 {
			return g.msg(up, 1, 120, "")
		}
		return g.msg(down, 2, 400, "")
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		recs = recs[:0]
		for j := 0; j < DefaultBatchSize && done+j < b.N; j++ {
			r := next(done + j)
			r.Offset = int64(done + j)
			recs = append(recs, r)
		}
		b.StartTimer()
		if _, _, err := w.build(ctx, int64(done), recs, nil); err != nil {
			b.Fatal(err)
		}
		done += len(recs)
	}
}
