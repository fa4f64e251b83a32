package sv2_test

import (
	"context"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/internal/sv2sim"
	"github.com/relaymeter/relaymeter/stratum/sv2/noise"
)

// BenchmarkSv2EdgeNoise measures shares through the edge with Noise on
// both sides, one at a time (each SubmitSharesStandard waits for its
// answer), every frame forwarded once durable in the in-process Kafka;
// "direct" is the same miner against the pool alone, in the same run.
func BenchmarkSv2EdgeNoise(b *testing.B) {
	e := setup(b, options{noiseDown: true, noiseUp: true})
	run := func(b *testing.B, addr string, cfg *noise.Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		res, err := sv2sim.RunMiner(ctx, sv2sim.MinerConfig{Addr: addr, Noise: cfg, UserIdentity: "acme.rig1", Shares: b.N})
		if err != nil {
			b.Fatal(err)
		}
		if res.Accepted+res.Rejected != b.N {
			b.Fatalf("%d shares answered of %d", res.Accepted+res.Rejected, b.N)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "shares/s")
	}
	b.Run("edge", func(b *testing.B) { run(b, e.addr(), e.miner) })
	b.Run("direct", func(b *testing.B) { run(b, e.pool.Addr(), e.direct) })
}
