package ws_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/ws"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
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

// BenchmarkEdgeCPU measures the edge alone: it runs in a child process
// (process_test.go) recording into the parent's kfake, between a client and
// the simulated node that stay in the parent. An op is one eth_blockNumber
// request and its response, two messages. The edge-* metrics are the child's
// own: CPU (user + system, GC included), heap allocations, and goroutine
// wake-ups (scheduling events), each per message. ns/op is wall time, and
// -benchmem's B/op and allocs/op are the parent's (client, node, broker),
// not the edge's.
//
//   - closed-loop: one connection, one request at a time, the next sent
//     once the response is read: ns/op is the round trip, and each event is
//     a Kafka batch of its own, so the recorder's cost per batch dominates;
//   - closed-loop-50: 50 connections, each one request at a time: the
//     recorder's batches fill across connections, as in production;
//   - pipelined: one connection, up to 128 requests in flight.
func BenchmarkEdgeCPU(b *testing.B) {
	cluster := kafkatest.Start(b, kafkatest.Options{Partitions: 2, Topics: []string{topic}})
	node := startUpstream(b)
	modes := []struct {
		name string
		mode ws.Forwarding
	}{{"after-ack", ws.ForwardAfterAck}, {"after-queue", ws.ForwardAfterQueue}}
	for _, m := range modes {
		suffix := strings.ToUpper(strings.ReplaceAll(m.name, "-", "_"))
		c := startChild(b, childConfig{Brokers: cluster.Brokers, Upstream: node.url(), Forwarding: m.mode, PayloadCapture: -1,
			CPUProfile: os.Getenv("EDGE_CPUPROFILE_" + suffix), AllocProfile: os.Getenv("EDGE_ALLOCPROFILE_" + suffix)}, nil)
		for _, shape := range []struct {
			name          string
			conns, window int
		}{{"closed-loop", 1, 1}, {"closed-loop-50", 50, 1}, {"pipelined", 1, 128}} {
			b.Run(shape.name+"/"+m.name, func(b *testing.B) { benchEdgeCPU(b, c, shape.conns, shape.window) })
		}
	}
}

// BenchmarkEdgeCPUPool is BenchmarkEdgeCPU with a pool of two upstreams:
// what the failover bookkeeping costs a client that never moves (every
// message read again by package subscriptions, requests tracked in
// flight, writes toward the upstream not corked).
func BenchmarkEdgeCPUPool(b *testing.B) {
	cluster := kafkatest.Start(b, kafkatest.Options{Partitions: 2, Topics: []string{topic}})
	up := startUpstream(b).url() + "," + startUpstream(b).url()
	for _, m := range []struct {
		name string
		mode ws.Forwarding
	}{{"after-ack", ws.ForwardAfterAck}, {"after-queue", ws.ForwardAfterQueue}} {
		c := startChild(b, childConfig{Brokers: cluster.Brokers, Upstream: up, Forwarding: m.mode, PayloadCapture: -1}, nil)
		for _, shape := range []struct {
			name          string
			conns, window int
		}{{"closed-loop-50", 50, 1}, {"pipelined", 1, 128}} {
			b.Run(shape.name+"/"+m.name, func(b *testing.B) { benchEdgeCPU(b, c, shape.conns, shape.window) })
		}
	}
}

// BenchmarkBareProxyCPU is BenchmarkEdgeCPU for a bare proxy on the same
// WebSocket library, in the same child process harness, copying messages
// and recording nothing: the floor below which the edge cannot go without
// changing library or runtime; the difference to nginx (BenchmarkNginxCPU)
// is theirs, and the difference to BenchmarkEdgeCPU the edge's own.
func BenchmarkBareProxyCPU(b *testing.B) {
	cluster := kafkatest.Start(b, kafkatest.Options{Partitions: 2, Topics: []string{topic}})
	node := startUpstream(b)
	c := startChild(b, childConfig{Brokers: cluster.Brokers, Upstream: node.url(), Bare: true}, nil)
	for _, shape := range []struct {
		name          string
		conns, window int
	}{{"closed-loop-50", 50, 1}, {"pipelined", 1, 128}} {
		b.Run(shape.name, func(b *testing.B) { benchEdgeCPU(b, c, shape.conns, shape.window) })
	}
}

// benchEdgeCPU runs b.N round trips through the child edge c, spread over
// conns connections with up to window requests in flight on each.
func benchEdgeCPU(b *testing.B, c *child, conns, window int) {
	var before childStats
	benchRoundTrips(b, c.url, conns, window, func() { before = c.stats(b, false) }, func(msgs float64) {
		after := c.stats(b, false)
		b.ReportMetric(float64(after.CPUNanos-before.CPUNanos)/msgs, "edge-cpu-ns/msg")
		b.ReportMetric(float64(after.Allocs-before.Allocs)/msgs, "edge-allocs/msg")
		b.ReportMetric(float64(after.AllocBytes-before.AllocBytes)/msgs, "edge-B/msg")
		// The runtime tracks one in 8 of a goroutine's scheduling transitions.
		b.ReportMetric(8*float64(after.SchedEvents-before.SchedEvents)/msgs, "edge-wakeups/msg")
	})
}

// benchProxyCPU is benchEdgeCPU for a proxy whose CPU cpu reports.
func benchProxyCPU(b *testing.B, url func(string) string, cpu func() int64, conns, window int) {
	var before int64
	benchRoundTrips(b, url, conns, window, func() { before = cpu() }, func(msgs float64) {
		b.ReportMetric(float64(cpu()-before)/msgs, "proxy-cpu-ns/msg")
	})
}

// benchRoundTrips runs b.N round trips through url, spread over conns
// connections with up to window requests in flight on each, calling start
// and done around them (done gets the number of messages).
func benchRoundTrips(b *testing.B, url func(string) string, conns, window int, start func(), done func(msgs float64)) {
	ctx := context.Background()
	clients := make([]*websocket.Conn, conns)
	for i := range clients {
		conn, _, err := websocket.Dial(ctx, url(fmt.Sprintf("bench%d", i)), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.CloseNow()
		clients[i] = conn
	}
	req := []byte(`{"jsonrpc":"2.0","id":1234567,"method":"eth_blockNumber","params":[]}`)
	run := func(n int) error {
		var g errgroup.Group
		for i, conn := range clients {
			share := n / conns
			if i < n%conns {
				share++
			}
			g.Go(func() error { return roundTrips(ctx, conn, req, share, window) })
		}
		return g.Wait()
	}
	if err := run(20 * conns); err != nil { // warm: the streams' partition writers, buffers
		b.Fatal(err)
	}
	start()
	b.ResetTimer()
	t0 := time.Now()
	if err := run(b.N); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	msgs := float64(2 * b.N)
	b.ReportMetric(msgs/elapsed.Seconds(), "msgs/s")
	done(msgs)
}

// roundTrips sends req n times on conn, with up to window in flight, and
// reads the n responses.
func roundTrips(ctx context.Context, conn *websocket.Conn, req []byte, n, window int) error {
	slots := make(chan struct{}, window)
	errc := make(chan error, 1)
	go func() {
		for range n {
			slots <- struct{}{}
			if err := conn.Write(ctx, websocket.MessageText, req); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		if _, _, err := conn.Read(ctx); err != nil {
			return fmt.Errorf("response %d: %w", i, err)
		}
		<-slots
	}
	return <-errc
}

// BenchmarkEdgeAccept measures what accepting a connection costs: an op is
// a client's handshake, one eth_chainId call and its answer, and a normal
// close, through one edge (open access on, keys resolved through a warm
// identity.Cache over a real registry). open-access names the application
// in the path, with no lookup; key-path and key-header present an
// application key, ws://HOST/v1/<key> or Authorization: Bearer. conns/s
// is connections completed per second of wall time; cpu-us/conn is the
// whole process (client, edge, recorder, broker, node) per connection.
// cache-resolve-only is the warm cache's answer alone.
func BenchmarkEdgeAccept(b *testing.B) {
	// Connections follow each other faster than the edge tears the last
	// ones down: the per-address limit would refuse some.
	k := setupKeys(b, identity.CacheConfig{TTL: time.Hour}, true, func(c *ws.Config) { c.Limits.MaxConnectionsPerIP = -1 })
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the node reports every close; keep its channel from filling
		for {
			select {
			case <-k.node.closes:
			case <-stop:
				return
			}
		}
	}()
	req := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`)
	for _, tc := range []struct {
		name, path string
		header     http.Header
	}{
		{"open-access", "/bench", nil},
		{"key-path", "/v1/" + k.key, nil},
		{"key-header", "/", bearerHeader("Bearer " + k.key)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			once := func() error {
				c, _, err := websocket.Dial(ctx, k.base()+tc.path, &websocket.DialOptions{HTTPHeader: tc.header})
				if err != nil {
					return err
				}
				defer c.CloseNow()
				if err := c.Write(ctx, websocket.MessageText, req); err != nil {
					return err
				}
				if _, _, err := c.Read(ctx); err != nil {
					return err
				}
				return c.Close(websocket.StatusNormalClosure, "")
			}
			if err := once(); err != nil { // warms the key cache
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for range b.N {
				if err := once(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "conns/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(b.N), "cpu-us/conn")
		})
	}
	// What the key costs a connection at most: the warm cache's answer
	// alone (the credential's parsing is a few comparisons).
	b.Run("cache-resolve-only", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for range b.N {
			if _, err := k.cache.Resolve(ctx, k.key); err != nil {
				b.Fatal(err)
			}
		}
	})
}
