package ws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relaymeter/relaymeter/ingest/ws"
)

// TestClientNotReading: a client that asks for large responses and does
// not read is closed with 1008 "client not reading" by the write deadline,
// under either mode, its queue full meanwhile (after-ack). The upstream is
// told 1001, and every buffer is released. Under after-ack the close
// records responses that never crossed (queued when the client was closed);
// under after-queue the one write that was stuck completes as the client
// drains, so everything recorded crossed.
func TestClientNotReading(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode ws.Forwarding
	}{{"after-ack", ws.ForwardAfterAck}, {"after-queue", ws.ForwardAfterQueue}} {
		t.Run(mode.name, func(t *testing.T) {
			e := setup(t, func(c *ws.Config) {
				c.Forwarding, c.QueueBytes, c.WriteTimeout, c.PayloadCapture = mode.mode, 256<<10, 300*time.Millisecond, 0
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, e.url("slow"), &websocket.DialOptions{HTTPClient: smallWindowClient()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			for j := range 128 {
				if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"ethsim_bytes","params":[61440]}`, j)); err != nil {
					break
				}
			}
			waitFor(t, "the edge to give up on the client", func() bool {
				return e.metric(t, "relaymeter_ws_edge_not_reading_total", "client") == 1
			})
			for { // drain: the close frame follows what the socket holds
				if _, _, err = c.Read(ctx); err != nil {
					break
				}
			}
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "client not reading" {
				t.Fatalf("client read %v, want close 1008 \"client not reading\"", err)
			}
			if code := e.up.closed(t); code != websocket.StatusGoingAway {
				t.Fatalf("upstream saw %d, want 1001", code)
			}
			waitFor(t, "every buffer to be released", func() bool { return e.metric(t, "relaymeter_ws_edge_buffer_bytes", "") == 0 })
			evs := only(t, e.events(t))
			cl := evs[len(evs)-1].GetClosed()
			crossed := cl.GetForwardedToClientThroughSeq() == lastSeq(evs, down)
			if cl.GetReason() != "client not reading" || cl.GetCloseCode() != 1008 || crossed != (mode.mode == ws.ForwardAfterQueue) {
				t.Fatalf("closed %v, last response seq %d", cl, lastSeq(evs, down))
			}
		})
	}
}

// TestBackPressure: while messages wait to be durable (the broker blocked),
// a full queue stops the edge reading the side they come from, whichever
// direction, and nobody is closed: waiting for Kafka is not a client's
// fault. Once the broker recovers everything crosses.
func TestBackPressure(t *testing.T) {
	t.Run("toward the upstream", func(t *testing.T) {
		// 4 requests fill a 16 KiB queue (4 KiB buffers); the 5th is read
		// and recorded, and waits for room; no more is read.
		e := setup(t, func(c *ws.Config) { c.QueueBytes = 16 << 10 })
		c := e.dial(t, "app")
		defer c.CloseNow()
		exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}`, 1)
		release := blockProduce(t, e)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		const n = 100
		go func() {
			for j := range n {
				if c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"eth_chainId"}`, j+1)) != nil {
					return
				}
			}
		}()
		const want = 1 + 2 + 5 // opened, the first exchange, 4 queued and 1 waiting
		waitFor(t, "the queue to fill", func() bool { return e.rec.Stats().Recorded >= want })
		time.Sleep(300 * time.Millisecond) // what could be read in that time, if anything were
		if got := e.rec.Stats().Recorded; got != want {
			t.Fatalf("%d events recorded while the queue was full, want %d", got, want)
		}
		release()
		for j := range n {
			if _, _, err := c.Read(ctx); err != nil {
				t.Fatalf("response %d: %v", j+1, err)
			}
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
		e.up.closed(t)
		evs := only(t, e.events(t))
		if cl := evs[len(evs)-1].GetClosed(); cl.GetReason() != "client closed" || cl.GetMessagesToClient() != n+1 {
			t.Fatalf("closed %v", cl)
		}
	})
	t.Run("toward the client", func(t *testing.T) {
		// 8 KiB responses sit in 16 KiB buffers: two fill a 32 KiB queue.
		e := setup(t, func(c *ws.Config) { c.QueueBytes, c.WriteTimeout = 32<<10, 200*time.Millisecond })
		c := e.dial(t, "app")
		defer c.CloseNow()
		exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}`, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		const n = 20
		// Sent before the broker blocks; the responses queue toward the
		// client, waiting to be durable.
		for j := range n {
			if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"ethsim_bytes","params":[8192]}`, j+1)); err != nil {
				t.Fatal(err)
			}
		}
		release := blockProduce(t, e)
		time.Sleep(time.Second) // five write timeouts: long enough for a wrong 1008
		if got := e.metric(t, "relaymeter_ws_edge_not_reading_total", "client"); got != 0 {
			t.Fatal("the client was closed for not reading while its responses waited for the broker")
		}
		release()
		for j := range n {
			if _, p, err := c.Read(ctx); err != nil || !bytes.Contains(p, []byte(`"result":"0123`)) {
				t.Fatalf("response %d: %.60s, %v", j+1, p, err)
			}
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
		e.up.closed(t)
		evs := only(t, e.events(t))
		if cl := evs[len(evs)-1].GetClosed(); cl.GetReason() != "client closed" || cl.GetMessagesToClient() != n+1 {
			t.Fatalf("closed %v", cl)
		}
	})
}

// TestOverloaded: when the edge's buffer budget stays exhausted (here by
// messages waiting for a blocked broker), a reader that waits longer than
// twice the write timeout closes its client with 1013, try again later,
// and the connections holding the budget go on once the broker recovers.
func TestOverloaded(t *testing.T) {
	e := setup(t, func(c *ws.Config) {
		// The smallest budget a 64 KiB message allows: two 128 KiB buffers.
		c.MaxMessageSize, c.BufferBytes, c.QueueBytes, c.WriteTimeout = 64<<10, 256<<10, 1<<20, 200*time.Millisecond
	})
	a, b := e.dial(t, "holder"), e.dial(t, "late")
	defer a.CloseNow()
	defer b.CloseNow()
	exchange(t, a, websocket.MessageText, `{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}`, 1)
	exchange(t, b, websocket.MessageText, `{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}`, 1)
	release := blockProduce(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	big := bytes.Repeat([]byte("x"), 60<<10) // echoed; each in a 64 KiB buffer
	for range 4 {
		if err := a.Write(ctx, websocket.MessageText, big); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the budget to fill", func() bool { return e.metric(t, "relaymeter_ws_edge_buffer_bytes", "") == 256<<10 })
	if err := b.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`)); err != nil {
		t.Fatal(err)
	}
	_, _, err := b.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusTryAgainLater || ce.Reason != "edge overloaded, try again later" {
		t.Fatalf("late client read %v, want close 1013", err)
	}
	if n := e.metric(t, "relaymeter_ws_edge_overloaded_total", ""); n != 1 {
		t.Fatalf("overloaded_total %v, want 1", n)
	}
	release()
	for j := range 4 {
		if _, p, err := a.Read(ctx); err != nil || len(p) != len(big) {
			t.Fatalf("echo %d: %d bytes, %v", j, len(p), err)
		}
	}
	_ = a.Close(websocket.StatusNormalClosure, "")
	e.up.closed(t)
	e.up.closed(t)
	streams := e.events(t)
	got := map[string]string{}
	for _, evs := range streams {
		cl := evs[len(evs)-1].GetClosed()
		got[evs[0].GetOpened().GetApplication()] = fmt.Sprintf("%s %d", cl.GetReason(), cl.GetCloseCode())
	}
	if got["late"] != "edge overloaded 1013" || got["holder"] != "client closed 1000" {
		t.Fatalf("closes %v", got)
	}
}

// TestClientNeverReading: a client that stops reading and never drains
// still has its connection ended and its stream closed: the write stuck in
// the kernel is abandoned when the library gives up on the close
// handshake, and nothing the edge holds waits on it.
func TestClientNeverReading(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode ws.Forwarding
	}{{"after-ack", ws.ForwardAfterAck}, {"after-queue", ws.ForwardAfterQueue}} {
		t.Run(mode.name, func(t *testing.T) {
			e := setup(t, func(c *ws.Config) {
				c.Forwarding, c.QueueBytes, c.WriteTimeout, c.PayloadCapture = mode.mode, 256<<10, 300*time.Millisecond, 0
			})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, e.url("gone"), &websocket.DialOptions{HTTPClient: smallWindowClient()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			for j := range 128 {
				if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"ethsim_bytes","params":[61440]}`, j)); err != nil {
					break
				}
			}
			waitFor(t, "the edge to give up on the client", func() bool {
				return e.metric(t, "relaymeter_ws_edge_not_reading_total", "client") == 1
			})
			if code := e.up.closed(t); code != websocket.StatusGoingAway {
				t.Fatalf("upstream saw %d, want 1001", code)
			}
			waitFor(t, "the connection to end", func() bool { return e.metric(t, "relaymeter_ws_edge_connections_active", "") == 0 })
			waitFor(t, "every buffer to be released", func() bool { return e.metric(t, "relaymeter_ws_edge_buffer_bytes", "") == 0 })
			evs := only(t, e.events(t))
			if cl := evs[len(evs)-1].GetClosed(); cl.GetReason() != "client not reading" || cl.GetCloseCode() != 1008 {
				t.Fatalf("closed %v", cl)
			}
		})
	}
}
