package ws_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/twmb/franz-go/pkg/kmsg"

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
