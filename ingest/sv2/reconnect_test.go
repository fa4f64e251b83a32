package sv2_test

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaymeter/relaymeter/ingest/event"
	edgesv2 "github.com/relaymeter/relaymeter/ingest/sv2"
	"github.com/relaymeter/relaymeter/internal/sv2sim"
	"github.com/relaymeter/relaymeter/stratum/sv2"
)

// secondPool starts another pool like the env's, plaintext.
func secondPool(t *testing.T) (*sv2sim.Pool, uint16) {
	t.Helper()
	p, err := sv2sim.StartPool(sv2sim.PoolConfig{RejectEvery: 3, ShareValue: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	_, port, _ := net.SplitHostPort(p.Addr())
	n, _ := strconv.Atoi(port)
	return p, uint16(n)
}

// minerReconnected runs a miner through the edge whose pool sends
// Reconnect{host, port} after its second share, and returns what the
// miner saw.
func minerReconnected(t *testing.T, e *env, host string, port uint16) sv2sim.MinerResult {
	t.Helper()
	var once sync.Once
	res, err := sv2sim.RunMiner(ctxT(t), sv2sim.MinerConfig{Addr: e.addr(), Noise: e.miner, UserIdentity: "acme.rig1", Shares: 20,
		Mined: func(n int) {
			if n == 2 {
				once.Do(func() {
					if got := e.pool.Reconnect(host, port); got != 1 {
						t.Errorf("pool sent Reconnect to %d connections", got)
					}
				})
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reconnect == nil {
		t.Fatalf("miner saw no Reconnect: %+v", res)
	}
	return res
}

// streamList is the streams in the order they opened.
func streamList(streams map[uuid.UUID][]*event.Event) [][]*event.Event {
	var out [][]*event.Event
	for _, evs := range streams {
		out = append(out, evs)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j][0].ObservedAt < out[i][0].ObservedAt {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestSv2ReconnectRewrite(t *testing.T) {
	for _, tc := range []struct {
		name, host, advertise string
		wantHost              string
		wantPort              uint16
	}{
		// An empty new_host is the pool's own host; without --advertise the
		// miner is told "your present host and port": the edge.
		{name: "same host, no advertise", host: ""},
		{name: "host given, advertised", host: "127.0.0.1", advertise: "edge.example:3336", wantHost: "edge.example", wantPort: 3336},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, options{noiseDown: true, mod: func(c *edgesv2.Config) { c.Advertise = tc.advertise }})
			pool2, port2 := secondPool(t)
			res := minerReconnected(t, e, tc.host, port2)
			if res.Reconnect.NewHost != tc.wantHost || res.Reconnect.NewPort != tc.wantPort {
				t.Fatalf("miner got Reconnect %+v, want new_host %q new_port %d", res.Reconnect, tc.wantHost, tc.wantPort)
			}
			e.waitClosed(t, 1)
			if pool2.Stats().FramesIn != 0 {
				t.Fatal("the second pool got frames before the miner came back")
			}
			pool1Frames := e.pool.Stats().FramesIn
			// The miner comes back to the edge, which dials the second pool.
			back, err := sv2sim.RunMiner(ctxT(t), sv2sim.MinerConfig{Addr: e.addr(), Noise: e.miner, UserIdentity: "acme.rig1", Shares: 3})
			if err != nil || back.Accepted+back.Rejected != 3 {
				t.Fatalf("miner back through the edge: %+v, %v", back, err)
			}
			waitFor(t, "the second pool to get the miner", func() bool { return pool2.Stats().FramesIn == back.Stats.FramesOut })
			// Another device from the same address is not redirected.
			other, err := sv2sim.RunMiner(ctxT(t), sv2sim.MinerConfig{Addr: e.addr(), Noise: e.miner, UserIdentity: "acme.rig2", Shares: 1, DeviceID: "d2"})
			if err != nil || other.Accepted != 1 {
				t.Fatalf("other device: %+v, %v", other, err)
			}
			waitFor(t, "the first pool to get the other device", func() bool { return e.pool.Stats().FramesIn == pool1Frames+other.Stats.FramesOut })
			e.waitClosed(t, 3)
			if got := e.metric(t, "relaymeter_sv2_edge_reconnects_total", "rewritten"); got != 1 {
				t.Errorf("reconnects rewritten %v", got)
			}
			if got := e.metric(t, "relaymeter_sv2_edge_redirected_dials_total", ""); got != 1 {
				t.Errorf("redirected dials %v", got)
			}

			streams := streamList(e.events(t))
			if len(streams) != 3 {
				t.Fatalf("%d streams, want 3", len(streams))
			}
			first, second, third := streams[0], streams[1], streams[2]
			closed := lastClosed(t, first)
			wantTarget := pool2.Addr()
			if !strings.Contains(closed.Reason, "upstream Reconnect to "+wantTarget) {
				t.Errorf("reason %q does not name %s", closed.Reason, wantTarget)
			}
			var reconnects int
			for _, ev := range first {
				m := ev.GetMessage()
				if m == nil || m.Method != "Reconnect" {
					continue
				}
				reconnects++
				var r sv2.Reconnect
				if err := r.Decode(m.Payload); err != nil || r.NewHost != tc.wantHost || r.NewPort != tc.wantPort {
					t.Errorf("recorded Reconnect %+v (%v): want the rewritten frame", r, err)
				}
				if m.Direction != event.Direction_UPSTREAM_TO_CLIENT {
					t.Errorf("Reconnect recorded %v", m.Direction)
				}
			}
			if reconnects != 1 {
				t.Errorf("%d Reconnects recorded, want 1", reconnects)
			}
			// Everything the miner got, Reconnect included, is recorded.
			if tl := tallyOf(t, first); tl.frames[event.Direction_UPSTREAM_TO_CLIENT] != res.Stats.FramesIn ||
				tl.wire[event.Direction_UPSTREAM_TO_CLIENT] != res.Stats.WireIn {
				t.Errorf("recorded %d frames %d wire bytes to the miner; it got %d, %d",
					tl.frames[event.Direction_UPSTREAM_TO_CLIENT], tl.wire[event.Direction_UPSTREAM_TO_CLIENT], res.Stats.FramesIn, res.Stats.WireIn)
			}
			if got := second[0].GetOpened().UpstreamAddr; got != wantTarget {
				t.Errorf("the miner's next stream went to %s, want %s", got, wantTarget)
			}
			if got := third[0].GetOpened().UpstreamAddr; got != e.pool.Addr() {
				t.Errorf("the other device's stream went to %s, want %s", got, e.pool.Addr())
			}
		})
	}
}

func TestSv2ReconnectPass(t *testing.T) {
	e := setup(t, options{mod: func(c *edgesv2.Config) { c.Reconnect = edgesv2.ReconnectPass }})
	_, port2 := secondPool(t)
	res := minerReconnected(t, e, "", port2)
	if res.Reconnect.NewHost != "" || res.Reconnect.NewPort != port2 {
		t.Fatalf("miner got Reconnect %+v, want the pool's unchanged", res.Reconnect)
	}
	e.waitClosed(t, 1)
	back, err := sv2sim.RunMiner(ctxT(t), sv2sim.MinerConfig{Addr: e.addr(), UserIdentity: "acme.rig1", Shares: 1})
	if err != nil || back.Accepted != 1 {
		t.Fatalf("%+v, %v", back, err)
	}
	e.waitClosed(t, 2)
	if got := e.metric(t, "relaymeter_sv2_edge_reconnects_total", "passed"); got != 1 {
		t.Errorf("reconnects passed %v", got)
	}
	streams := streamList(e.events(t))
	if len(streams) != 2 {
		t.Fatalf("%d streams", len(streams))
	}
	// The miner closes (with a reset when answers it did not read are
	// pending): the edge does not.
	if r := lastClosed(t, streams[0]).Reason; r != "client closed" && !strings.Contains(r, "reading from client") {
		t.Errorf("reason %q, want the miner's close", r)
	}
	if got := streams[1][0].GetOpened().UpstreamAddr; got != e.pool.Addr() {
		t.Errorf("next connection went to %s, want the configured pool", got)
	}
}

func TestSv2ReconnectTTLExpires(t *testing.T) {
	e := setup(t, options{mod: func(c *edgesv2.Config) { c.ReconnectTTL = 300 * time.Millisecond }})
	pool2, port2 := secondPool(t)
	minerReconnected(t, e, "127.0.0.1", port2)
	e.waitClosed(t, 1)
	time.Sleep(400 * time.Millisecond)
	back, err := sv2sim.RunMiner(ctxT(t), sv2sim.MinerConfig{Addr: e.addr(), UserIdentity: "acme.rig1", Shares: 1})
	if err != nil || back.Accepted != 1 {
		t.Fatalf("%+v, %v", back, err)
	}
	if pool2.Stats().FramesIn != 0 {
		t.Error("the redirect outlived its TTL")
	}
	streams := streamList(e.events(t))
	if got := streams[len(streams)-1][0].GetOpened().UpstreamAddr; got != e.pool.Addr() {
		t.Errorf("after the TTL the miner went to %s, want %s", got, e.pool.Addr())
	}
}

func TestSv2ReconnectToDeadAddressFallsBack(t *testing.T) {
	e := setup(t, options{})
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(dead.Addr().String())
	dead.Close()
	n, _ := strconv.Atoi(port)
	minerReconnected(t, e, "", uint16(n))
	e.waitClosed(t, 1)
	back, err := sv2sim.RunMiner(ctxT(t), sv2sim.MinerConfig{Addr: e.addr(), UserIdentity: "acme.rig1", Shares: 1})
	if err != nil || back.Accepted != 1 {
		t.Fatalf("%+v, %v", back, err)
	}
	streams := streamList(e.events(t))
	if got := streams[len(streams)-1][0].GetOpened().UpstreamAddr; got != e.pool.Addr() {
		t.Errorf("went to %s, want the configured pool", got)
	}
}
