package beam_test

import (
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/internal/beamsim"
	sbeam "github.com/relaymeter/relaymeter/stratum/beam"
)

// BenchmarkBeamEdgeTLS measures solutions through the edge with TLS on
// both sides, each a round trip of three lines (solution, result, job),
// every line forwarded once durable in the in-process Kafka; "direct" is
// the same miner against the node alone.
func BenchmarkBeamEdgeTLS(b *testing.B) {
	e := setup(b, options{tlsDown: true, tlsUp: true})
	run := func(b *testing.B, m *beamsim.Miner) {
		if code, err := m.Login(e.secret); err != nil || code != sbeam.CodeLoginOK {
			b.Fatalf("login: %v %v", code, err)
		}
		b.ResetTimer()
		start := time.Now()
		if _, err := m.Mine(b.N); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(3*b.N)/time.Since(start).Seconds(), "lines/s")
	}
	b.Run("edge", func(b *testing.B) { run(b, e.dial(b)) })
	b.Run("direct", func(b *testing.B) {
		m, err := beamsim.Dial(e.node.Addr(), e.nodeTLS)
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		run(b, m)
	})
}
