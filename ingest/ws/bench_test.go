package ws_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/ingest/ws"
)

// BenchmarkEdge pipelines eth_blockNumber requests from one client and reads
// the responses, straight to the upstream and through the edge (recording
// into kfake). An op is one request and its response: two messages. The
// cpu-ns/msg metric is the whole process (client, upstream, edge, recorder,
// broker); the edge's cost is the difference between the two.
func BenchmarkEdge(b *testing.B) {
	e := setup(b, func(c *ws.Config) { c.PayloadCapture = -1 })
	q := setup(b, func(c *ws.Config) { c.PayloadCapture, c.Forwarding = -1, ws.ForwardAfterQueue })
	for _, tc := range []struct{ name, url string }{
		{"direct", e.up.url()}, {"edge-after-ack", e.url("bench")}, {"edge-after-queue", q.url("bench")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			c, _, err := websocket.Dial(ctx, tc.url, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			req := []byte(`{"jsonrpc":"2.0","id":1234567,"method":"eth_blockNumber","params":[]}`)
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			errc := make(chan error, 1)
			go func() {
				for range b.N {
					if err := c.Write(ctx, websocket.MessageText, req); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			for i := range b.N {
				if _, _, err := c.Read(ctx); err != nil {
					b.Fatal(fmt.Errorf("response %d: %w", i, err))
				}
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(2*b.N)/time.Since(start).Seconds(), "msgs/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(2*b.N), "cpu-ns/msg")
		})
	}
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
