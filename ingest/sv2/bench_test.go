package sv2_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/internal/sv2sim"
	"github.com/relaymeter/relaymeter/stratum/sv2/noise"
)

// cpuTime is the process's user plus system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSv2EdgeNoise measures shares through the edge with Noise on
// both sides, one at a time (each SubmitSharesStandard waits for its
// answer), every frame forwarded once durable in the in-process Kafka;
// "direct" is the same miner against the pool alone, in the same run.
//
// Besides shares/s it reports, per frame the miner exchanged (a share is
// two: the submit and its answer), the wall time (ns/frame) and the
// process's CPU time (cpu-ns/frame, from getrusage: user plus system of
// everything in the process, so miner, pool, and for "edge" the edge, the
// recorder and the in-process Kafka broker). The edge's own cost per frame
// is about edge's cpu-ns/frame minus direct's.
func BenchmarkSv2EdgeNoise(b *testing.B) {
	e := setup(b, options{noiseDown: true, noiseUp: true})
	run := func(b *testing.B, addr string, cfg *noise.Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start, cpu0 := time.Now(), cpuTime(b)
		res, err := sv2sim.RunMiner(ctx, sv2sim.MinerConfig{Addr: addr, Noise: cfg, UserIdentity: "acme.rig1", Shares: b.N})
		if err != nil {
			b.Fatal(err)
		}
		wall, cpu := time.Since(start), cpuTime(b)-cpu0
		if res.Accepted+res.Rejected != b.N {
			b.Fatalf("%d shares answered of %d", res.Accepted+res.Rejected, b.N)
		}
		frames := float64(res.Stats.FramesIn + res.Stats.FramesOut)
		b.ReportMetric(float64(b.N)/wall.Seconds(), "shares/s")
		b.ReportMetric(float64(wall.Nanoseconds())/frames, "ns/frame")
		b.ReportMetric(float64(cpu.Nanoseconds())/frames, "cpu-ns/frame")
	}
	b.Run("edge", func(b *testing.B) { run(b, e.addr(), e.miner) })
	b.Run("direct", func(b *testing.B) { run(b, e.pool.Addr(), e.direct) })
}
