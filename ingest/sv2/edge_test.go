package sv2_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	edgesv2 "github.com/relaymeter/relaymeter/ingest/sv2"
	"github.com/relaymeter/relaymeter/internal/eventtest"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/sv2sim"
	"github.com/relaymeter/relaymeter/stratum/sv2"
	"github.com/relaymeter/relaymeter/stratum/sv2/noise"
)

const topic = record.DefaultTopic

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// identity is an authority key, a static key and a certificate for it.
type identity struct {
	authority, static *noise.PrivateKey
	cert              noise.Certificate
}

func newIdentity(t testing.TB) identity {
	t.Helper()
	authority, err := noise.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	static, err := noise.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, err := noise.IssueCertificate(authority, static.PublicKey(), now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return identity{authority: authority, static: static, cert: cert}
}

func (id identity) server() *noise.Config {
	return &noise.Config{StaticKey: id.static, Certificate: &id.cert}
}

func (id identity) client() *noise.Config {
	return &noise.Config{AuthorityKey: id.authority.PublicKey()}
}

type env struct {
	cluster *kafkatest.Cluster
	rec     *record.Recorder
	pool    *sv2sim.Pool
	edge    *edgesv2.Edge
	ln      net.Listener
	logs    *syncBuffer
	reg     *prometheus.Registry
	closed  bool
	// miner is the Noise config miners use toward the edge (nil: plaintext).
	miner *noise.Config
	// direct is the Noise config a miner uses toward the pool itself.
	direct *noise.Config
}

type options struct {
	noiseDown, noiseUp bool
	// upstreamAuthority overrides the authority the edge expects of the pool.
	upstreamAuthority *noise.PublicKey
	mod               func(*edgesv2.Config)
}

func setup(t testing.TB, o options) *env {
	t.Helper()
	e := &env{logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	e.cluster = kafkatest.Start(t, kafkatest.Options{Partitions: 2, Topics: []string{topic}})
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	e.rec, err = record.New(record.Config{Brokers: e.cluster.Brokers, EdgeID: "edge-sv2-test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	poolID, edgeID := newIdentity(t), newIdentity(t)
	pcfg := sv2sim.PoolConfig{RejectEvery: 3, ShareValue: 10}
	cfg := edgesv2.Config{Recorder: e.rec, Service: "sv2", Supplier: "sup", OpenAccess: true, Logger: log,
		HandshakeTimeout: 5 * time.Second, Registerer: e.reg}
	if o.noiseUp {
		pcfg.Noise = poolID.server()
		cfg.UpstreamNoise, e.direct = poolID.client(), poolID.client()
		if o.upstreamAuthority != nil {
			cfg.UpstreamNoise = &noise.Config{AuthorityKey: *o.upstreamAuthority}
		}
	}
	if o.noiseDown {
		cfg.Downstream = func() *noise.Config { return edgeID.server() }
		e.miner = edgeID.client()
	}
	e.pool, err = sv2sim.StartPool(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Upstream = e.pool.Addr()
	if o.mod != nil {
		o.mod(&cfg)
	}
	e.edge, err = edgesv2.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.edge.Serve(e.ln) }()
	t.Cleanup(func() {
		if !e.closed {
			e.close(t)
		}
		e.pool.Close()
	})
	return e
}

// metric is the value of the counter name with the label value (if
// any), 0 when unset.
func (e *env) metric(t *testing.T, name, label string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func (e *env) addr() string { return e.ln.Addr().String() }

func (e *env) close(t testing.TB) {
	t.Helper()
	e.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = e.ln.Close()
	if err := e.edge.Close(ctx); err != nil {
		t.Error(err)
	}
	if err := e.rec.Close(ctx); err != nil {
		t.Error(err)
	}
}

// waitClosed waits until the edge has finished n connections, so that
// the reasons recorded are theirs and not the edge's shutdown.
func (e *env) waitClosed(t *testing.T, n int) {
	t.Helper()
	waitFor(t, "connections to close", func() bool { return strings.Count(e.logs.String(), "connection closed") >= n })
}

// events closes the edge and returns the recorded streams.
func (e *env) events(t *testing.T) map[uuid.UUID][]*event.Event {
	t.Helper()
	e.close(t)
	return eventtest.StreamEvents(t, eventtest.ReadTopic(t, e.cluster.Brokers, topic, 2))
}

func only(t *testing.T, streams map[uuid.UUID][]*event.Event) []*event.Event {
	t.Helper()
	if len(streams) != 1 {
		t.Fatalf("%d streams, want 1", len(streams))
	}
	for _, evs := range streams {
		return evs
	}
	return nil
}

// waitFor polls cond until it holds, failing t after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// tally sums a stream's message events per direction.
type tally struct {
	frames, plain, wire [3]int64 // by event.Direction
	methods             []string
	payloads            map[string][][]byte
}

func tallyOf(t *testing.T, evs []*event.Event) tally {
	t.Helper()
	tl := tally{payloads: map[string][][]byte{}}
	for _, ev := range evs {
		m := ev.GetMessage()
		if m == nil {
			continue
		}
		d := m.Direction
		tl.frames[d]++
		tl.plain[d] += int64(m.PayloadSize) + sv2.HeaderLen
		tl.wire[d] += int64(m.WireSize)
		tl.methods = append(tl.methods, m.Method)
		tl.payloads[m.Method] = append(tl.payloads[m.Method], m.Payload)
		if int(m.PayloadSize) != len(m.Payload) {
			t.Errorf("%s: payload %d of %d bytes captured", m.Method, len(m.Payload), m.PayloadSize)
		}
	}
	return tl
}

func TestSv2EndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name     string
		down, up bool
	}{
		{"plaintext", false, false},
		{"noise both sides", true, true},
		{"noise downstream only", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, options{noiseDown: tc.down, noiseUp: tc.up})
			res, err := sv2sim.RunMiner(ctxT(t), sv2sim.MinerConfig{Addr: e.addr(), Noise: e.miner, UserIdentity: "acme.rig1", Shares: 7})
			if err != nil {
				t.Fatal(err)
			}
			// Nonces 3 and 6 are rejected by the pool.
			if res.Accepted != 5 || res.Rejected != 2 {
				t.Fatalf("accepted %d rejected %d, want 5 and 2", res.Accepted, res.Rejected)
			}
			waitFor(t, "the pool's counts to settle", func() bool {
				s := e.pool.Stats()
				return s.FramesIn == res.Stats.FramesOut && s.FramesOut == res.Stats.FramesIn
			})
			pool := e.pool.Stats()
			// Counted once written: the peer may have read the frame first.
			waitFor(t, "frames_total to upstream to match the miner", func() bool {
				return e.metric(t, "relaymeter_sv2_edge_frames_total", "CLIENT_TO_UPSTREAM") == float64(res.Stats.FramesOut)
			})
			waitFor(t, "bytes_total to client to match the miner", func() bool {
				return e.metric(t, "relaymeter_sv2_edge_bytes_total", "UPSTREAM_TO_CLIENT") == float64(res.Stats.BytesIn)
			})
			if got := e.metric(t, "relaymeter_sv2_edge_connections_total", ""); got != 1 {
				t.Errorf("connections_total %v", got)
			}
			evs := only(t, e.events(t))

			opened := evs[0].GetOpened()
			if opened == nil || opened.Application != "acme" || opened.Protocol != event.Protocol_STRATUM_V2 || opened.Service != "sv2" {
				t.Fatalf("first event %v, want StreamOpened for acme", evs[0])
			}
			wantSec := func(on bool) event.Security {
				if on {
					return event.Security_NOISE
				}
				return event.Security_SECURITY_NONE
			}
			if opened.ClientSecurity != wantSec(tc.down) || opened.UpstreamSecurity != wantSec(tc.up) {
				t.Errorf("security client %v upstream %v", opened.ClientSecurity, opened.UpstreamSecurity)
			}
			tl := tallyOf(t, evs)
			up, down := event.Direction_CLIENT_TO_UPSTREAM, event.Direction_UPSTREAM_TO_CLIENT
			// Miner: 1 setup + 1 open + 7 submits; pool: 1 + 3 + 7 answers.
			if res.Stats.FramesOut != 9 || pool.FramesOut != 11 {
				t.Fatalf("miner sent %d frames, pool %d; want 9 and 11", res.Stats.FramesOut, pool.FramesOut)
			}
			if tl.frames[up] != res.Stats.FramesOut || tl.frames[up] != pool.FramesIn {
				t.Errorf("recorded %d frames to upstream; miner sent %d, pool got %d", tl.frames[up], res.Stats.FramesOut, pool.FramesIn)
			}
			if tl.frames[down] != pool.FramesOut || tl.frames[down] != res.Stats.FramesIn {
				t.Errorf("recorded %d frames to client; pool sent %d, miner got %d", tl.frames[down], pool.FramesOut, res.Stats.FramesIn)
			}
			if tl.plain[up] != res.Stats.BytesOut || tl.plain[up] != pool.BytesIn {
				t.Errorf("recorded %d bytes to upstream; miner sent %d, pool got %d", tl.plain[up], res.Stats.BytesOut, pool.BytesIn)
			}
			if tl.plain[down] != pool.BytesOut || tl.plain[down] != res.Stats.BytesIn {
				t.Errorf("recorded %d bytes to client; pool sent %d, miner got %d", tl.plain[down], pool.BytesOut, res.Stats.BytesIn)
			}
			// wire_size is what crossed the miner's socket after the handshake.
			if tl.wire[up] != res.Stats.WireOut || tl.wire[down] != res.Stats.WireIn {
				t.Errorf("recorded wire %d up %d down; miner socket %d out %d in", tl.wire[up], tl.wire[down], res.Stats.WireOut, res.Stats.WireIn)
			}
			if tc.down && tl.wire[up] == tl.plain[up] {
				t.Errorf("noise downstream but wire size %d equals plaintext size", tl.wire[up])
			}
			// The sv2-shares policy reads SubmitShares.Success payloads without the header.
			if n := len(tl.payloads["SubmitShares.Success"]); n != 5 {
				t.Errorf("%d SubmitShares.Success recorded, want 5", n)
			}
			if n := len(tl.payloads["SubmitShares.Error"]); n != 2 {
				t.Errorf("%d SubmitShares.Error recorded, want 2", n)
			}
			for _, p := range tl.payloads["SubmitShares.Success"] {
				var s sv2.SubmitSharesSuccess
				if err := s.Decode(p); err != nil || s.NewSubmitsAcceptedCount != 1 || s.NewSharesSum != 10 {
					t.Errorf("SubmitShares.Success payload %x: %+v, %v", p, s, err)
				}
			}
			if tl.methods[0] != "SetupConnection" || tl.methods[1] != "SetupConnection.Success" || tl.methods[2] != "OpenStandardMiningChannel" {
				t.Errorf("methods start %v", tl.methods[:3])
			}
			var submits int
			for _, ev := range evs {
				m := ev.GetMessage()
				if m != nil && m.Method == "SubmitSharesStandard" {
					submits++
					if m.ChannelId == nil || *m.ChannelId != 1 || m.SequenceNumber == nil || *m.SequenceNumber != uint32(submits) {
						t.Errorf("submit %d: channel %v seq %v", submits, m.ChannelId, m.SequenceNumber)
					}
				}
				if m != nil && m.Method == "OpenStandardMiningChannel" && (m.RequestId == nil || *m.RequestId != 7 || m.Role != event.Role_REQUEST) {
					t.Errorf("open channel: request id %v role %v", m.RequestId, m.Role)
				}
			}
			closed := evs[len(evs)-1].GetClosed()
			if closed == nil {
				t.Fatalf("last event %v, want StreamClosed", evs[len(evs)-1])
			}
			if closed.MessagesToUpstream != uint64(tl.frames[up]) || closed.MessagesToClient != uint64(tl.frames[down]) {
				t.Errorf("closed counts %d/%d, want %d/%d", closed.MessagesToUpstream, closed.MessagesToClient, tl.frames[up], tl.frames[down])
			}
			if closed.ForwardedToUpstreamThroughSeq == nil || closed.ForwardedToClientThroughSeq == nil ||
				*closed.ForwardedToUpstreamThroughSeq == 0 || *closed.ForwardedToClientThroughSeq == 0 {
				t.Errorf("forwarded through %v/%v", closed.ForwardedToUpstreamThroughSeq, closed.ForwardedToClientThroughSeq)
			}
		})
	}
}

func TestSv2WrongPoolAuthorityRefused(t *testing.T) {
	other := newIdentity(t).authority.PublicKey()
	e := setup(t, options{noiseUp: true, upstreamAuthority: &other})
	_, err := sv2sim.RunMiner(ctxT(t), sv2sim.MinerConfig{Addr: e.addr(), UserIdentity: "acme", Shares: 1})
	if err == nil {
		t.Fatal("miner got through an edge that does not trust the pool")
	}
	if got := e.pool.Stats().FramesIn; got != 0 {
		t.Errorf("pool got %d frames", got)
	}
	if got := e.metric(t, "relaymeter_sv2_edge_noise_handshake_failures_total", "upstream"); got != 1 {
		t.Errorf("upstream handshake failures %v, want 1", got)
	}
	if !strings.Contains(e.logs.String(), "REFUSING pool") {
		t.Errorf("no refusal logged:\n%s", e.logs)
	}
	e.waitClosed(t, 1)
	closed := lastClosed(t, only(t, e.events(t)))
	if !strings.Contains(closed.Reason, "noise handshake with upstream failed") {
		t.Errorf("reason %q", closed.Reason)
	}
}

func lastClosed(t *testing.T, evs []*event.Event) *event.StreamClosed {
	t.Helper()
	c := evs[len(evs)-1].GetClosed()
	if c == nil {
		t.Fatalf("last event %v, want StreamClosed", evs[len(evs)-1])
	}
	return c
}

func setupFrame(t *testing.T, protocol uint8) []byte {
	t.Helper()
	f, err := sv2.AppendMessage(nil, &sv2.SetupConnection{Protocol: protocol, MinVersion: 2, MaxVersion: 2})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSv2BadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		send   func(t *testing.T, c *sv2sim.Conn) []byte
		reason string
		// reply is the error code the edge answers with, "" for none.
		reply string
	}{
		{name: "first frame not SetupConnection", send: func(t *testing.T, c *sv2sim.Conn) []byte {
			f, _ := sv2.AppendMessage(nil, &sv2.SubmitSharesStandard{ChannelID: 1})
			return f
		}, reason: "first frame is not SetupConnection"},
		{name: "unsupported protocol", send: func(t *testing.T, c *sv2sim.Conn) []byte { return setupFrame(t, 3) },
			reason: "unsupported protocol 3", reply: "unsupported-protocol"},
		{name: "frame over the size limit", send: func(t *testing.T, c *sv2sim.Conn) []byte {
			return []byte{0, 0, 0, 0xff, 0xff, 0x0f}
		}, reason: "frame over the size limit"},
		{name: "truncated frame", send: func(t *testing.T, c *sv2sim.Conn) []byte {
			return setupFrame(t, 0)[:10]
		}, reason: "truncated frame"},
		{name: "malformed SetupConnection", send: func(t *testing.T, c *sv2sim.Conn) []byte {
			return []byte{0, 0, 0, 1, 0, 0, 0}
		}, reason: "malformed SetupConnection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, options{mod: func(c *edgesv2.Config) { c.MaxPayload = 4096 }})
			c, err := sv2sim.Dial(ctxT(t), e.addr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.WriteFrame(tc.send(t, c)); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tc.name, "truncated") {
				_ = c.Raw().(*net.TCPConn).CloseWrite()
			}
			_ = c.Raw().SetReadDeadline(time.Now().Add(10 * time.Second))
			m, err := c.Recv()
			if tc.reply != "" {
				se, ok := m.(*sv2.SetupConnectionError)
				if err != nil || !ok || se.ErrorCode != tc.reply {
					t.Fatalf("got %v, %v; want SetupConnection.Error %q", m, err, tc.reply)
				}
				_, err = c.Recv()
			}
			if err == nil || isTimeout(err) {
				t.Fatalf("connection not closed: %v", err)
			}
			e.waitClosed(t, 1)
			closed := lastClosed(t, only(t, e.events(t)))
			if !strings.Contains(closed.Reason, tc.reason) {
				t.Errorf("reason %q, want %q", closed.Reason, tc.reason)
			}
			if e.pool.Stats().FramesIn != 0 {
				t.Errorf("pool got frames")
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestSv2GarbageNoiseAct(t *testing.T) {
	e := setup(t, options{noiseDown: true})
	raw, err := net.Dial("tcp", e.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// 64 bytes of garbage as act 1, then a plaintext SetupConnection.
	if _, err := raw.Write(append(bytes.Repeat([]byte{0xa5}, 64), setupFrame(t, 0)...)); err != nil {
		t.Fatal(err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := raw.Read(buf); err != nil {
			if isTimeout(err) {
				t.Fatal("edge did not close the connection")
			}
			break
		}
	}
	e.waitClosed(t, 1)
	closed := lastClosed(t, only(t, e.events(t)))
	if !strings.Contains(closed.Reason, "handshake") && !strings.Contains(closed.Reason, "client") {
		t.Errorf("reason %q", closed.Reason)
	}
	if e.pool.Stats().FramesIn != 0 {
		t.Errorf("pool got frames")
	}
}

func TestSv2HandshakeTimeout(t *testing.T) {
	e := setup(t, options{mod: func(c *edgesv2.Config) { c.HandshakeTimeout = 100 * time.Millisecond }})
	raw, err := net.Dial("tcp", e.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("edge did not close a silent connection: %v", err)
	}
	e.waitClosed(t, 1)
	if r := lastClosed(t, only(t, e.events(t))).Reason; !strings.Contains(r, "timed out") {
		t.Errorf("reason %q", r)
	}
}

func TestSv2IdleTimeout(t *testing.T) {
	e := setup(t, options{mod: func(c *edgesv2.Config) { c.IdleTimeout = 200 * time.Millisecond }})
	c, err := sv2sim.Dial(ctxT(t), e.addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteFrame(setupFrame(t, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recv(); err != nil {
		t.Fatal(err)
	}
	_ = c.Raw().SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Recv(); err == nil || isTimeout(err) {
		t.Fatalf("idle connection not closed: %v", err)
	}
	e.waitClosed(t, 1)
	evs := only(t, e.events(t))
	if r := lastClosed(t, evs).Reason; r != "idle timeout" {
		t.Errorf("reason %q", r)
	}
	// No channel opened: one stream with no application holds what crossed.
	if app := evs[0].GetOpened().GetApplication(); app != "" {
		t.Errorf("application %q, want none", app)
	}
	if tl := tallyOf(t, evs); strings.Join(tl.methods, ",") != "SetupConnection,SetupConnection.Success" {
		t.Errorf("methods %v", tl.methods)
	}
}

// accounts knows one account.
type accounts map[string]string

func (a accounts) Application(_ context.Context, account string) (string, bool, error) {
	id, ok := a[account]
	return id, ok, nil
}

func TestSv2UnknownUserRefused(t *testing.T) {
	e := setup(t, options{mod: func(c *edgesv2.Config) {
		c.OpenAccess = false
		c.Accounts = accounts{"acme": "app-1"}
	}})
	_, err := sv2sim.RunMiner(ctxT(t), sv2sim.MinerConfig{Addr: e.addr(), UserIdentity: "nobody.rig", Shares: 1})
	var er *sv2sim.ErrorReply
	if !errors.As(err, &er) || er.Message != "OpenMiningChannel.Error" || er.Code != "unknown-user" {
		t.Fatalf("got %v, want OpenMiningChannel.Error unknown-user", err)
	}
	res, err := sv2sim.RunMiner(ctxT(t), sv2sim.MinerConfig{Addr: e.addr(), UserIdentity: "acme.rig", Shares: 2})
	if err != nil || res.Accepted != 2 {
		t.Fatalf("known account: %+v, %v", res, err)
	}
	waitFor(t, "the pool to get the shares", func() bool { return e.pool.Stats().FramesIn == 5 })
	apps := map[string]bool{}
	for _, evs := range e.events(t) {
		apps[evs[0].GetOpened().GetApplication()] = true
		for _, ev := range evs {
			if m := ev.GetMessage(); m != nil && m.Method == "OpenMiningChannel.Error" && m.Direction != event.Direction_UPSTREAM_TO_CLIENT {
				t.Errorf("edge's error recorded in direction %v", m.Direction)
			}
		}
	}
	if !apps["app-1"] || len(apps) != 2 {
		t.Errorf("stream applications %v, want app-1 and the unattributed one", apps)
	}
}

func TestSv2NoiseFrameOverLimit(t *testing.T) {
	e := setup(t, options{noiseDown: true, mod: func(c *edgesv2.Config) { c.MaxPayload = 4096 }})
	c, err := sv2sim.Dial(ctxT(t), e.addr(), e.miner)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big, err := sv2.AppendFrame(nil, 0, sv2.MsgSetupConnection, make([]byte, 8192))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFrame(big); err != nil {
		t.Fatal(err)
	}
	_ = c.Raw().SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Recv(); err == nil || isTimeout(err) {
		t.Fatalf("connection not closed: %v", err)
	}
	e.waitClosed(t, 1)
	if r := lastClosed(t, only(t, e.events(t))).Reason; !strings.Contains(r, "frame over the size limit") {
		t.Errorf("reason %q", r)
	}
}
