package ws_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/ingest/ws"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
)

// BenchmarkIdleConnMemory is what an idle client connection with one
// newHeads subscription costs the edge, which runs alone in a child
// process: the growth of its HeapInuse+StackInuse (after a GC) from no
// connection to RELAYMETER_IDLE_CONNS of them (default 2000), per
// connection, with one upstream and with a pool of two (the failover
// bookkeeping on). Each connection takes two file descriptors in the edge
// and two in the parent (client and node), so the machine's descriptor
// limit bounds the count: 9000 under a limit of 20000.
// RELAYMETER_IDLE_HEAPPROFILE=file writes the edge's heap profile at its
// peak to file.1 and file.2.
//
//	RELAYMETER_IDLE_CONNS=9000 go test ./ingest/ws -run '^$' -bench BenchmarkIdleConnMemory -benchtime 1x
func BenchmarkIdleConnMemory(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("RELAYMETER_IDLE_CONNS")); err == nil && v > 0 {
		n = v
	}
	for _, upstreams := range []int{1, 2} {
		b.Run(fmt.Sprintf("upstreams=%d", upstreams), func(b *testing.B) {
			for b.Loop() {
				idleConnMemory(b, n, upstreams)
			}
		})
	}
}

func idleConnMemory(b *testing.B, n, upstreams int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cluster := kafkatest.Start(b, kafkatest.Options{Partitions: 2, Topics: []string{topic}})
	p := startPool(b)
	up := p.url(0)
	if upstreams == 2 {
		up += "," + p.url(1)
	}
	cfg := childConfig{Brokers: cluster.Brokers, Upstream: up, Forwarding: ws.ForwardAfterQueue}
	if prof := os.Getenv("RELAYMETER_IDLE_HEAPPROFILE"); prof != "" { // where the bytes go
		cfg.SampleHeap, cfg.HeapProfile = time.Second, prof+"."+strconv.Itoa(upstreams)
	}
	c := startChild(b, cfg, nil)
	before := c.stats(b, true)
	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, conn := range conns {
			conn.CloseNow()
		}
	}()
	for i := range n {
		conn, _, err := websocket.Dial(ctx, c.url("idle"), nil)
		if err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, conn)
		if err := conn.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := conn.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(time.Second) // let the connections' first writes and timers settle
	after := c.stats(b, true)
	mem := func(s childStats) float64 { return float64(s.HeapInuse + s.StackInuse) }
	b.ReportMetric((mem(after)-mem(before))/float64(n), "edge-B/conn")
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(n), "heap-B/conn")
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/float64(n), "stack-B/conn")
	b.ReportMetric(float64(n), "conns")
}
