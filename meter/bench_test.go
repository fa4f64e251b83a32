package meter

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ledger"
)

// BenchmarkMeter measures events metered into Postgres exactly once: b.N
// Message events of 200 concurrent streams are produced into kfake (4
// partitions) before the timer starts; the timer covers a Meter consuming
// them until every offset is committed.
//
//	go test ./meter -run '^$' -bench Meter -benchtime 200000x
func BenchmarkMeter(b *testing.B) {
	const streams = 200
	pool, _ := pgtestDB(b)
	e := &env{pool: pool, store: ledger.New(pool), topic: DefaultTopic, brokers: startKafka(b, benchPartitions, DefaultTopic)}
	if err := e.store.PutService(context.Background(), ledger.Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC"}); err != nil {
		b.Fatal(err)
	}
	gens := make([]*gen, streams)
	recs := make([]kafka.Message, 0, b.N+2*streams)
	for i := range gens {
		gens[i] = newGen(i)
		recs = append(recs, gens[i].open("eth", "app", "sup"))
	}
	for i := range b.N {
		g := gens[i%streams]
		if i/streams%2 == 0 {
			recs = append(recs, g.msg(up, 1, 120, ""))
		} else {
			recs = append(recs, g.msg(down, 2, 400, ""))
		}
	}
	for _, g := range gens {
		recs = append(recs, g.close())
	}
	e.produce(b, recs...)
	reg := prometheus.NewRegistry()
	m := e.meter(b, func(c *Config) { c.BatchSize, c.BatchWait, c.Registerer = DefaultBatchSize, DefaultBatchWait, reg })
	b.ResetTimer()
	began := time.Now()
	r := start(m)
	e.waitCommitted(b, int64(len(recs)))
	elapsed := time.Since(began)
	b.StopTimer()
	r.stop(b)
	b.ReportMetric(float64(len(recs))/elapsed.Seconds(), "events/s")
	if mfs, err := reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "relaymeter_meter_batch_commit_seconds" {
				h := mf.GetMetric()[0].GetHistogram()
				b.ReportMetric(float64(h.GetSampleCount()), "batches")
				b.ReportMetric(h.GetSampleSum()/elapsed.Seconds()*100, "%commit")
			}
		}
	}
	if n := e.count(b, `SELECT count(*) FROM relays`); n != int64(b.N) {
		b.Fatalf("%d relays, want %d", n, b.N)
	}
}

// benchPartitions is the partition count of BenchmarkMeter's topic.
var benchPartitions = 4
