package sv2_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
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

// recvT reads the next message, failing t on error.
func recvT(t *testing.T, c *sv2sim.Conn) sv2.Message {
	t.Helper()
	_ = c.Raw().SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sendT(t *testing.T, c *sv2sim.Conn, m sv2.Message) {
	t.Helper()
	if err := c.Send(m); err != nil {
		t.Fatal(err)
	}
}

// openChannel opens a standard channel for user and waits for its job and
// prev hash; it returns the channel id.
func openChannel(t *testing.T, c *sv2sim.Conn, req uint32, user string) uint32 {
	t.Helper()
	sendT(t, c, &sv2.OpenStandardMiningChannel{RequestID: req, UserIdentity: user, NominalHashRate: 1e12})
	var ch uint32
	for got := 0; got < 3; got++ {
		switch m := recvT(t, c).(type) {
		case *sv2.OpenStandardMiningChannelSuccess:
			if m.RequestID != req {
				t.Fatalf("answer to request %d, want %d", m.RequestID, req)
			}
			ch = m.ChannelID
		case *sv2.NewMiningJob, *sv2.SetNewPrevHash:
		default:
			t.Fatalf("unexpected %T opening a channel", m)
		}
	}
	return ch
}

// TestSv2ChannelsOfTwoAccounts runs two channels of two accounts on one
// connection: each account's channel frames go to its own stream, the
// connection-level ones to the first.
func TestSv2ChannelsOfTwoAccounts(t *testing.T) {
	e := setup(t, options{noiseDown: true, noiseUp: true})
	c, err := sv2sim.Dial(ctxT(t), e.addr(), e.miner)
	if err != nil {
		t.Fatal(err)
	}
	sendT(t, c, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, DeviceID: "d1"})
	if _, ok := recvT(t, c).(*sv2.SetupConnectionSuccess); !ok {
		t.Fatal("no SetupConnection.Success")
	}
	acme := openChannel(t, c, 1, "acme.rig1")
	beta := openChannel(t, c, 2, "beta.rig7")
	// A third channel of the first account shares its stream.
	acme2 := openChannel(t, c, 3, "acme.rig2")
	submits := map[uint32]int{acme: 3, beta: 2, acme2: 1}
	seq := uint32(0)
	for _, ch := range []uint32{acme, beta, acme2} {
		for range submits[ch] {
			seq++
			sendT(t, c, &sv2.SubmitSharesStandard{ChannelID: ch, SequenceNumber: seq, JobID: 1, Nonce: seq + 100})
			switch m := recvT(t, c).(type) {
			case *sv2.SubmitSharesSuccess:
				if m.ChannelID != ch {
					t.Fatalf("answer for channel %d, want %d", m.ChannelID, ch)
				}
			case *sv2.SubmitSharesError:
			default:
				t.Fatalf("unexpected %T", m)
			}
		}
	}
	stats := c.Stats()
	c.Close()
	e.waitClosed(t, 1)

	streams := e.events(t)
	if len(streams) != 2 {
		t.Fatalf("%d streams, want 2 (one per account)", len(streams))
	}
	byApp := map[string][]*event.Event{}
	var ids = map[string]uuid.UUID{}
	for id, evs := range streams {
		app := evs[0].GetOpened().GetApplication()
		byApp[app], ids[app] = evs, id
	}
	first, second := byApp["acme"], byApp["beta"]
	if first == nil || second == nil {
		t.Fatalf("streams for %v, want acme and beta", byApp)
	}
	if p := first[0].GetOpened().ParentStreamId; len(p) != 0 {
		t.Errorf("first stream has a parent %x", p)
	}
	if p, want := second[0].GetOpened().ParentStreamId, ids["acme"]; !bytes.Equal(p, want[:]) {
		t.Errorf("beta's parent %x, want acme's stream %s", p, ids["acme"])
	}
	channelsOf := map[string]map[uint32]bool{"acme": {acme: true, acme2: true}, "beta": {beta: true}}
	var total tally
	for app, evs := range byApp {
		tl := tallyOf(t, evs)
		for d := range 3 {
			total.frames[d] += tl.frames[d]
			total.wire[d] += tl.wire[d]
		}
		for _, ev := range evs {
			m := ev.GetMessage()
			if m == nil {
				continue
			}
			if m.ChannelId != nil && !channelsOf[app][*m.ChannelId] {
				t.Errorf("%s stream has %s of channel %d", app, m.Method, *m.ChannelId)
			}
			switch m.Method {
			case "OpenStandardMiningChannel", "OpenStandardMiningChannel.Success":
				want := map[string]map[uint32]bool{"acme": {1: true, 3: true}, "beta": {2: true}}[app]
				if m.RequestId == nil || !want[*m.RequestId] {
					t.Errorf("%s stream has %s of request %v", app, m.Method, m.RequestId)
				}
			case "SetupConnection", "SetupConnection.Success":
				if app != "acme" {
					t.Errorf("%s in %s's stream, want the first", m.Method, app)
				}
			}
		}
		closed := lastClosed(t, evs)
		up, down := event.Direction_CLIENT_TO_UPSTREAM, event.Direction_UPSTREAM_TO_CLIENT
		if closed.MessagesToUpstream != uint64(tl.frames[up]) || closed.MessagesToClient != uint64(tl.frames[down]) {
			t.Errorf("%s closed with %d/%d messages, recorded %d/%d", app, closed.MessagesToUpstream, closed.MessagesToClient, tl.frames[up], tl.frames[down])
		}
		if closed.GetForwardedToUpstreamThroughSeq() == 0 || closed.GetForwardedToClientThroughSeq() == 0 {
			t.Errorf("%s forwarded through %d/%d", app, closed.GetForwardedToUpstreamThroughSeq(), closed.GetForwardedToClientThroughSeq())
		}
	}
	// acme: setup + answer, 2 opens × (request + 3 answers), 4 submits × 2.
	// beta: 1 open × 4, 2 submits × 2.
	if n := len(first) - 2; n != 2+8+8 {
		t.Errorf("acme stream has %d messages, want 18", n)
	}
	if n := len(second) - 2; n != 4+4 {
		t.Errorf("beta stream has %d messages, want 8", n)
	}
	up, down := event.Direction_CLIENT_TO_UPSTREAM, event.Direction_UPSTREAM_TO_CLIENT
	if total.frames[up] != stats.FramesOut || total.frames[down] != stats.FramesIn ||
		total.wire[up] != stats.WireOut || total.wire[down] != stats.WireIn {
		t.Errorf("recorded %d/%d frames %d/%d wire; miner %d/%d, %d/%d", total.frames[up], total.frames[down],
			total.wire[up], total.wire[down], stats.FramesOut, stats.FramesIn, stats.WireOut, stats.WireIn)
	}
}

// rawServer is a minimal upstream for Job Declaration: it answers
// SetupConnection with Success and AllocateMiningJobToken with its Success,
// and keeps every byte it received.
type rawServer struct {
	ln  net.Listener
	mu  sync.Mutex
	got bytes.Buffer
}

func startRawServer(t *testing.T) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *rawServer) serve(c net.Conn) {
	defer c.Close()
	r := sv2.NewReader(io.TeeReader(c, writerFunc(func(p []byte) (int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.got.Write(p)
	})), 0)
	for {
		h, payload, err := r.Next()
		if err != nil {
			return
		}
		var out sv2.Message
		switch h.MsgType {
		case sv2.MsgSetupConnection:
			out = &sv2.SetupConnectionSuccess{UsedVersion: 2}
		case sv2.MsgAllocateMiningJobToken:
			var m sv2.AllocateMiningJobToken
			_ = m.Decode(payload)
			out = &sv2.AllocateMiningJobTokenSuccess{RequestID: m.RequestID, MiningJobToken: sv2.Bytes{1, 2, 3}}
		default:
			continue
		}
		f, _ := sv2.AppendMessage(nil, out)
		if _, err := c.Write(f); err != nil {
			return
		}
	}
}

func (s *rawServer) received() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.got.Bytes()...)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestSv2JobDeclarationPassesThrough(t *testing.T) {
	jds := startRawServer(t)
	e := setup(t, options{mod: func(c *edgesv2.Config) {
		c.JobDeclarationUpstream = jds.ln.Addr().String()
		c.PassthroughApplication = "jd-app"
	}})
	c, err := sv2sim.Dial(ctxT(t), e.addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var sent bytes.Buffer
	frames := [][]byte{setupFrame(t, edgesv2.ProtocolJobDeclaration)}
	tok, _ := sv2.AppendMessage(nil, &sv2.AllocateMiningJobToken{UserIdentifier: "acme", RequestID: 9})
	// A frame of a type the codec does not know crosses as it is.
	unknown, _ := sv2.AppendFrame(nil, 0x0000, 0x5e, []byte("opaque"))
	frames = append(frames, tok, unknown)
	for i, f := range frames {
		if err := c.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		sent.Write(f)
		if i < 2 {
			m := recvT(t, c)
			want := []string{"*sv2.SetupConnectionSuccess", "*sv2.AllocateMiningJobTokenSuccess"}[i]
			if got := fmt.Sprintf("%T", m); got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		}
	}
	waitFor(t, "the upstream to get every frame", func() bool { return bytes.Equal(jds.received(), sent.Bytes()) })
	c.Close()
	e.waitClosed(t, 1)
	if e.pool.Stats().FramesIn != 0 {
		t.Error("a Job Declaration connection reached the mining pool")
	}
	evs := only(t, e.events(t))
	opened := evs[0].GetOpened()
	if opened.Application != "jd-app" || opened.UpstreamAddr != jds.ln.Addr().String() {
		t.Errorf("opened %v", opened)
	}
	tl := tallyOf(t, evs)
	want := []string{"SetupConnection", "SetupConnection.Success", "AllocateMiningJobToken", "AllocateMiningJobToken.Success", "Unknown(ext=0x0000,type=0x5e)"}
	if fmt.Sprint(tl.methods) != fmt.Sprint(want) {
		t.Errorf("methods %v, want %v", tl.methods, want)
	}
	for _, ev := range evs {
		if m := ev.GetMessage(); m != nil && m.Method == "AllocateMiningJobToken" && (m.RequestId == nil || *m.RequestId != 9) {
			t.Errorf("request id %v", m.RequestId)
		}
	}
	closed := lastClosed(t, evs)
	if closed.GetForwardedToUpstreamThroughSeq() != 6 || closed.GetForwardedToClientThroughSeq() != 5 {
		t.Errorf("forwarded through %d/%d, want 6/5 (seq 1 is StreamOpened; every frame recorded before it crossed)",
			closed.GetForwardedToUpstreamThroughSeq(), closed.GetForwardedToClientThroughSeq())
	}
}

// The pool, not the edge, answers a Template Distribution connection it
// does not serve; the stream has no application without
// PassthroughApplication.
func TestSv2TemplateDistributionPassesThrough(t *testing.T) {
	e := setup(t, options{})
	c, err := sv2sim.Dial(ctxT(t), e.addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteFrame(setupFrame(t, edgesv2.ProtocolTemplateDistribution)); err != nil {
		t.Fatal(err)
	}
	if se, ok := recvT(t, c).(*sv2.SetupConnectionError); !ok || se.ErrorCode != "unsupported-protocol" {
		t.Fatalf("got %v, want the pool's SetupConnection.Error", se)
	}
	e.waitClosed(t, 1)
	if got := e.pool.Stats().FramesIn; got != 1 {
		t.Errorf("pool got %d frames, want the SetupConnection", got)
	}
	evs := only(t, e.events(t))
	if app := evs[0].GetOpened().Application; app != "" {
		t.Errorf("application %q, want none", app)
	}
	if tl := tallyOf(t, evs); fmt.Sprint(tl.methods) != "[SetupConnection SetupConnection.Error]" {
		t.Errorf("methods %v", tl.methods)
	}
}

func TestSv2TooManyAccountsOnOneConnection(t *testing.T) {
	e := setup(t, options{})
	c, err := sv2sim.Dial(ctxT(t), e.addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendT(t, c, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2})
	recvT(t, c)
	for i := range edgesv2.MaxAccountsPerConn {
		openChannel(t, c, uint32(i+1), fmt.Sprintf("acct%d.w", i))
	}
	// An account already on the connection still gets channels.
	openChannel(t, c, 1000, "acct0.w2")
	sendT(t, c, &sv2.OpenStandardMiningChannel{RequestID: 1001, UserIdentity: "onemore.w"})
	if m, ok := recvT(t, c).(*sv2.OpenMiningChannelError); !ok || m.ErrorCode != edgesv2.ErrCodeTooManyChannels || m.RequestID != 1001 {
		t.Fatalf("got %+v, want OpenMiningChannel.Error too-many-channels", m)
	}
	c.Close()
	e.waitClosed(t, 1)
	if got := e.metric(t, "relaymeter_sv2_edge_channels_refused_total", edgesv2.ErrCodeTooManyChannels); got != 1 {
		t.Errorf("refused %v", got)
	}
	if n := len(e.events(t)); n != edgesv2.MaxAccountsPerConn {
		t.Errorf("%d streams, want %d", n, edgesv2.MaxAccountsPerConn)
	}
}

// TestSv2MinerNotReading has a pool flood a miner that stopped reading:
// the edge's write stalls, it gives up after the write timeout (the idle
// timeout), and the frame it could not deliver is recorded as not crossed.
func TestSv2MinerNotReading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	big, _ := sv2.AppendFrame(nil, sv2.ExtCore, 0x7f, bytes.Repeat([]byte{0xaa}, 60000))
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := sv2.NewReader(c, 0)
		for {
			h, payload, err := r.Next()
			if err != nil {
				return
			}
			var out sv2.Message = &sv2.SetupConnectionSuccess{UsedVersion: 2}
			if h.MsgType == sv2.MsgOpenStandardMiningChannel {
				var m sv2.OpenStandardMiningChannel
				_ = m.Decode(payload)
				out = &sv2.OpenStandardMiningChannelSuccess{RequestID: m.RequestID, ChannelID: 1}
			}
			f, _ := sv2.AppendMessage(nil, out)
			if _, err := c.Write(f); err != nil {
				return
			}
			if h.MsgType == sv2.MsgOpenStandardMiningChannel {
				break
			}
		}
		for {
			_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write(big); err != nil {
				return
			}
		}
	}()
	e := setup(t, options{mod: func(c *edgesv2.Config) { c.Upstream = ln.Addr().String(); c.IdleTimeout = 300 * time.Millisecond }})
	c, err := sv2sim.Dial(ctxT(t), e.addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendT(t, c, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2})
	recvT(t, c)
	// A small receive buffer makes the edge's writes stall sooner.
	if tc, ok := c.Raw().(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(16 << 10)
	}
	sendT(t, c, &sv2.OpenStandardMiningChannel{RequestID: 1, UserIdentity: "acme.w"})
	recvT(t, c)
	// The miner reads nothing more.
	e.waitClosed(t, 1)
	evs := only(t, e.events(t))
	closed := lastClosed(t, evs)
	if !strings.Contains(closed.Reason, "upstream to client: writing") || !strings.Contains(closed.Reason, "timeout") {
		t.Fatalf("reason %q, want a stalled write to the client", closed.Reason)
	}
	var last uint64
	for _, ev := range evs {
		if m := ev.GetMessage(); m != nil && m.Direction == event.Direction_UPSTREAM_TO_CLIENT {
			last = ev.Seq
		}
	}
	if last == 0 || closed.GetForwardedToClientThroughSeq() >= last {
		t.Fatalf("forwarded to the client through %d, last recorded %d: want the stalled frame not crossed", closed.GetForwardedToClientThroughSeq(), last)
	}
}
