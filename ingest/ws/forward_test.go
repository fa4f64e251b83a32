package ws_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/ws"
)

// TestForwardAfterAck blocks the broker and checks that a request is not
// forwarded until Kafka has acknowledged its event, so a message never
// crosses the edge unrecorded; then that ForwardAfterQueue forwards at once.
func TestForwardAfterAck(t *testing.T) {
	for _, mode := range []struct {
		name     string
		mode     ws.Forwarding
		forwards bool // while the broker is blocked
	}{{"after-ack", ws.ForwardAfterAck, false}, {"after-queue", ws.ForwardAfterQueue, true}} {
		t.Run(mode.name, func(t *testing.T) {
			e := setup(t, func(c *ws.Config) { c.Forwarding = mode.mode })
			c := e.dial(t, "app")
			defer c.CloseNow()
			// One exchange so the stream is open and the writer has metadata.
			exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 1)

			release := make(chan struct{})
			var once, unblock sync.Once
			e.cluster.Fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
				once.Do(func() { e.cluster.Fake.SleepControl(func() { <-release }) })
				return nil, nil, false
			})
			defer unblock.Do(func() { close(release) })

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			answers := make(chan string, 1)
			go func() {
				_, p, err := c.Read(ctx)
				if err == nil {
					answers <- string(p)
				}
				close(answers)
			}()
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}`)); err != nil {
				t.Fatal(err)
			}
			select {
			case a := <-answers:
				if !mode.forwards {
					t.Fatalf("answered %q while the broker was blocked: the request crossed unrecorded", a)
				}
			case <-time.After(500 * time.Millisecond):
				if mode.forwards {
					t.Fatal("no answer while the broker was blocked, want one at once")
				}
			}
			unblock.Do(func() { close(release) })
			if !mode.forwards {
				if a, ok := <-answers; !ok || a == "" {
					t.Fatal("no answer after the broker recovered")
				}
			}
			evs := only(t, e.events(t))
			var requests int
			for _, ev := range evs {
				if m := ev.GetMessage(); m != nil && m.Direction == up {
					requests++
				}
			}
			if requests != 2 {
				t.Fatalf("%d requests recorded, want 2", requests)
			}
		})
	}
}

// TestForwardedThrough checks StreamClosed's forwarded_*_through_seq: on a
// clean connection they are the last message of each direction; when the
// edge stops while a request waits for its event to be durable (the broker
// blocked), the request was recorded but never crossed, and the close says
// so under after-ack; under after-queue it had crossed already.
func TestForwardedThrough(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode ws.Forwarding
	}{{"after-ack", ws.ForwardAfterAck}, {"after-queue", ws.ForwardAfterQueue}} {
		t.Run(mode.name+"/clean", func(t *testing.T) {
			e := setup(t, func(c *ws.Config) { c.Forwarding = mode.mode })
			c := e.dial(t, "app")
			for i := range 3 {
				exchange(t, c, websocket.MessageText, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_chainId"}`, i), 1)
			}
			_ = c.Close(websocket.StatusNormalClosure, "")
			e.up.closed(t)
			evs := only(t, e.events(t))
			cl := evs[len(evs)-1].GetClosed()
			lastUp, lastDown := lastSeq(evs, up), lastSeq(evs, down)
			if cl.ForwardedToUpstreamThroughSeq == nil || *cl.ForwardedToUpstreamThroughSeq != lastUp ||
				cl.ForwardedToClientThroughSeq == nil || *cl.ForwardedToClientThroughSeq != lastDown || lastUp != 6 || lastDown != 7 {
				t.Fatalf("closed %v; last request seq %d, last response seq %d", cl, lastUp, lastDown)
			}
		})
		t.Run(mode.name+"/broker-blocked", func(t *testing.T) {
			e := setup(t, func(c *ws.Config) { c.Forwarding = mode.mode })
			c := e.dial(t, "app")
			defer c.CloseNow()
			exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 1)
			release := blockProduce(t, e)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}`)); err != nil {
				t.Fatal(err)
			}
			want := uint64(4) // opened, request, response, request
			if mode.mode == ws.ForwardAfterQueue {
				want++ // and its response, forwarded at once
				if _, _, err := c.Read(ctx); err != nil {
					t.Fatal(err)
				}
			}
			go func() { // answer the edge's close handshake
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			}()
			for e.rec.Stats().Recorded < want {
				if ctx.Err() != nil {
					t.Fatalf("%d events recorded, want %d", e.rec.Stats().Recorded, want)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := e.edge.Close(ctx); err != nil {
				t.Fatal(err)
			}
			release()
			evs := only(t, e.events(t))
			cl := evs[len(evs)-1].GetClosed()
			if n := len(evs); uint64(n) != want+1 || lastSeq(evs, up) != 4 {
				t.Fatalf("%d events, last request seq %d", n, lastSeq(evs, up))
			}
			wantUp, wantDown := uint64(2), uint64(3) // the blocked request never crossed
			if mode.mode == ws.ForwardAfterQueue {
				wantUp, wantDown = 4, 5
			}
			if cl.GetReason() != "edge shutting down" || cl.ForwardedToUpstreamThroughSeq == nil || *cl.ForwardedToUpstreamThroughSeq != wantUp ||
				cl.ForwardedToClientThroughSeq == nil || *cl.ForwardedToClientThroughSeq != wantDown {
				t.Fatalf("closed %v, want through seqs %d and %d", cl, wantUp, wantDown)
			}
		})
	}
}

// blockProduce holds every produce request at the broker until the
// returned function is called (also at cleanup).
func blockProduce(t *testing.T, e *env) (release func()) {
	ch := make(chan struct{})
	var once, unblock sync.Once
	e.cluster.Fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		once.Do(func() { e.cluster.Fake.SleepControl(func() { <-ch }) })
		return nil, nil, false
	})
	release = func() { unblock.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return release
}

// lastSeq is the seq of the last message of direction dir in evs.
func lastSeq(evs []*event.Event, dir event.Direction) uint64 {
	var seq uint64
	for _, ev := range evs {
		if m := ev.GetMessage(); m != nil && m.Direction == dir {
			seq = ev.Seq
		}
	}
	return seq
}

// TestCoalescedWrites: requests that become durable together (the broker
// held back, then released) are written to the upstream together, in a
// few writes rather than one each, in order, and all counted as crossed.
func TestCoalescedWrites(t *testing.T) {
	e := setup(t, nil)
	c := e.dial(t, "app")
	defer c.CloseNow()
	exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}`, 1)
	release := blockProduce(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 50
	for j := range n {
		if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"eth_chainId"}`, j+1)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the requests to be recorded", func() bool { return e.rec.Stats().Recorded >= 1+2+n })
	before := e.metric(t, "relaymeter_ws_edge_socket_writes_total", "upstream")
	release()
	for j := range n {
		_, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("response %d: %v", j+1, err)
		}
		if want := fmt.Sprintf(`"id":%d,`, j+1); !strings.Contains(string(p), want) {
			t.Fatalf("response %d is %s: out of order", j+1, p)
		}
	}
	if writes := e.metric(t, "relaymeter_ws_edge_socket_writes_total", "upstream") - before; writes > 5 {
		t.Fatalf("%v writes to the upstream for %d requests made durable together, want a few", writes, n)
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	e.up.closed(t)
	evs := only(t, e.events(t))
	cl := evs[len(evs)-1].GetClosed()
	if cl.GetForwardedToUpstreamThroughSeq() != lastSeq(evs, up) || cl.GetForwardedToClientThroughSeq() != lastSeq(evs, down) {
		t.Fatalf("closed %v; last seqs %d and %d", cl, lastSeq(evs, up), lastSeq(evs, down))
	}
}

// TestRejectedNotForwarded: a message whose event Kafka refuses for good
// (the topic's max.message.bytes lowered under a running edge) is never
// forwarded: its connection closes with 1011, the messages before it
// crossed, and other connections go on.
func TestRejectedNotForwarded(t *testing.T) {
	e := setup(t, nil)
	other := e.dial(t, "other")
	defer other.CloseNow()
	c := e.dial(t, "app")
	defer c.CloseNow()
	exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 1)
	setTopicMaxBytes(t, e.cluster.Brokers, topic, 4096)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	big := `{"jsonrpc":"2.0","id":2,"method":"eth_chainId","params":["` + strings.Repeat("x", 8000) + `"]}`
	if err := c.Write(ctx, websocket.MessageText, []byte(big)); err != nil {
		t.Fatal(err)
	}
	_, p, err := c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusInternalError {
		t.Fatalf("after a rejected message: read %q, %v; want a close with 1011", p, err)
	}
	// The other connection still works.
	exchange(t, other, websocket.MessageText, `{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}`, 1)
	if n := e.up.node.Calls(); n != 2 {
		t.Fatalf("the node received %d requests, want 2: the rejected one must not cross", n)
	}
	if n := e.rec.Stats().Rejected; n != 1 {
		t.Fatalf("%d events rejected, want the one", n)
	}
}

// setTopicMaxBytes lowers a topic's max.message.bytes on the cluster.
func setTopicMaxBytes(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...)}
	res, err := cl.IncrementalAlterConfigs(context.Background(), &kafka.IncrementalAlterConfigsRequest{
		Resources: []kafka.IncrementalAlterConfigsRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
			Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "max.message.bytes", Value: fmt.Sprint(n),
				ConfigOperation: kafka.ConfigOperationSet}}}},
	})
	if err == nil && len(res.Resources) == 1 {
		err = res.Resources[0].Error
	}
	if err != nil {
		t.Fatal(err)
	}
}
