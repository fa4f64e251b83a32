package ws_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/internal/eventtest"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
)

// TestMemoryBoundedNotReading: 50 clients each ask for 15 MiB of responses
// and never read. The edge runs alone in a child process (so its heap is
// not the node's or the clients'), with a 256 KiB queue per direction and
// connection. Each client must be closed with 1008 "client not reading",
// and the edge's memory must stay within what its configuration promises,
// where the old edge (256 messages of up to 1 MiB in flight per direction)
// would have held whatever it could read: 750 MiB were asked for.
//
// The bound: per connection, its two queues (2 × 256 KiB: the node stops
// reading requests while its writes are blocked, so requests queue too), a
// message being read each way (64 KiB toward the client, 4 KiB toward the
// node) and a 4 KiB buffer per side holding writes to send together; the
// buffer budget in use (exact accounting) must stay within that. The live heap, sampled after a GC every 20ms, must stay
// within it plus the heap of the same 50 connections idle, the edge's
// free list of idle 4 KiB buffers (a sixteenth of BufferBytes), the
// recorder's events in flight (16384 in 512-byte pooled buffers: 8 MiB)
// and 2 MiB for the producer's batch. (Classifying copies nothing.)
//
// The clients' receive buffers are 16 KiB, so the kernel holds little and
// the edge has to decide. A client drains only once the edge has logged
// that it closes it: the close frame can only follow the data already in
// the socket, so a client that never reads never sees it.
func TestMemoryBoundedNotReading(t *testing.T) {
	const (
		conns     = 50
		requests  = 256      // per client
		respBytes = 60 << 10 // in a 64 KiB buffer at the edge
		queue     = 256 << 10
		perConn   = 2*queue + 64<<10 + 4<<10 + 2*4<<10
		budget    = 64 << 20
		others    = budget/16 + 16384*512 + 2<<20
	)
	cluster := kafkatest.Start(t, kafkatest.Options{Partitions: 2, Topics: []string{topic}})
	node := startUpstream(t)
	var mu sync.Mutex
	decided := map[string]chan struct{}{}
	for i := range conns {
		decided[fmt.Sprintf("mem%02d", i)] = make(chan struct{})
	}
	onLog := func(line map[string]any) {
		if line["msg"] != "ws: client not reading, closing" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		app, _ := line["application"].(string)
		if ch, ok := decided[app]; ok {
			close(ch)
			delete(decided, app)
		}
	}
	c := startChild(t, childConfig{Brokers: cluster.Brokers, Upstream: node.url(), QueueBytes: queue, BufferBytes: budget,
		WriteTimeout: time.Second, SampleHeap: 20 * time.Millisecond, HeapProfile: os.Getenv("EDGE_HEAPPROFILE")}, onLog)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ready, wg sync.WaitGroup
	flood := make(chan struct{})
	errs := make(chan error, conns)
	for i := range conns {
		app := fmt.Sprintf("mem%02d", i)
		mu.Lock()
		ch := decided[app]
		mu.Unlock()
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- notReadingClient(ctx, c.url(app), requests, respBytes, &ready, flood, ch)
		}()
	}
	ready.Wait()
	idle := c.stats(t, true).LiveHeap
	close(flood)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// The clients are gone; the edge releases their buffers as it tears
	// each connection down, which may finish a little later.
	st := c.stats(t, false)
	for deadline := time.Now().Add(10 * time.Second); st.Buffered != 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		st = c.stats(t, false)
	}
	bound := idle + conns*perConn + others
	t.Logf("edge live heap: %.1f MiB with %d idle connections, %.1f MiB at peak (buffers %.1f MiB then, %.1f at most); bound %.1f MiB; asked for %d MiB",
		mib(idle), conns, mib(st.MaxLiveHeap), mib(st.BufferedAtPeak), mib(st.MaxBuffered), mib(bound), conns*requests*respBytes>>20)
	if st.MaxBuffered > conns*perConn {
		t.Errorf("buffers peaked at %.1f MiB, over %d × %d KiB", mib(st.MaxBuffered), conns, perConn>>10)
	}
	if st.MaxLiveHeap > bound {
		t.Errorf("edge live heap peaked at %.1f MiB, over the bound of %.1f MiB", mib(st.MaxLiveHeap), mib(bound))
	}
	if st.MaxBuffered < conns*queue {
		t.Errorf("buffers peaked at %.1f MiB: the clients never filled their queues", mib(st.MaxBuffered))
	}
	if st.Buffered != 0 {
		t.Errorf("%d buffer bytes still held 10 s after every connection closed", st.Buffered)
	}
	c.stop(t)

	streams := eventtest.StreamEvents(t, eventtest.ReadTopic(t, cluster.Brokers, topic, 2))
	if len(streams) != conns {
		t.Fatalf("%d streams, want %d", len(streams), conns)
	}
	for id, evs := range streams {
		cl := evs[len(evs)-1].GetClosed()
		last := lastSeq(evs, down)
		if cl.GetReason() != "client not reading" || cl.GetCloseCode() != 1008 ||
			cl.ForwardedToClientThroughSeq == nil || *cl.ForwardedToClientThroughSeq >= last {
			t.Errorf("stream %s: closed %v, last response seq %d: want 1008 with responses recorded but not forwarded", id, cl, last)
		}
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// notReadingClient makes one exchange, reports ready, and once flood is
// closed asks for requests responses of size bytes each without reading;
// once decided is closed (the edge gave up on it) it reads everything and
// checks the close is 1008 "client not reading".
func notReadingClient(ctx context.Context, url string, requests, size int, ready *sync.WaitGroup, flood, decided <-chan struct{}) error {
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: smallWindowClient()})
	if err != nil {
		ready.Done()
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	err = conn.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":"hello","method":"eth_chainId"}`))
	if err == nil {
		_, _, err = conn.Read(ctx)
	}
	ready.Done()
	if err != nil {
		return err
	}
	<-flood
	for j := range requests {
		req := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"ethsim_bytes","params":[%d]}`, j, size)
		if err := conn.Write(ctx, websocket.MessageText, req); err != nil {
			break // the edge may close before all are sent; the close below says why
		}
	}
	select {
	case <-decided:
	case <-ctx.Done():
		return fmt.Errorf("%s: the edge never closed it for not reading", url)
	}
	for {
		_, _, err := conn.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "client not reading" {
			return fmt.Errorf("%s: read %v, want close 1008 \"client not reading\"", url, err)
		}
		return nil
	}
}

// smallWindowClient dials with a 16 KiB receive buffer, set before the
// connection is made so the window stays small.
func smallWindowClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
		return errors.Join(err, serr)
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}
