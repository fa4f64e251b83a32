package beam_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/beam"
	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/internal/beamsim"
	"github.com/relaymeter/relaymeter/internal/eventtest"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	sbeam "github.com/relaymeter/relaymeter/stratum/beam"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

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

type options struct {
	tlsDown, tlsUp bool
	registry       bool // resolve keys in a real registry
	reject         bool
	upstream       string // dial this instead of the beamsim node
	wrongNodeCA    bool   // verify the node against another certificate
	loginTimeout   time.Duration
	writeTimeout   time.Duration
	idleTimeout    time.Duration
	maxConns       int
	keys           beam.Keys // instead of a registry
}

type env struct {
	cluster    *kafkatest.Cluster
	node       *beamsim.Node
	edge       *beam.Edge
	addr       string
	minerTLS   *tls.Config
	nodeTLS    *tls.Config // a client's configuration toward the node
	logs       *syncBuffer
	secret     string // known to the registry and the node
	unknown    string // known to the node only
	app, keyID string
	reg        *identity.Registry
}

func setup(t testing.TB, o options) *env {
	t.Helper()
	e := &env{logs: &syncBuffer{}, unknown: "beam-unknown-key-0123456789"}
	ctx := context.Background()
	cfg := beam.Config{Supplier: "sup", RejectUnknownKeys: o.reject, LoginTimeout: o.loginTimeout, WriteTimeout: o.writeTimeout, IdleTimeout: o.idleTimeout, MaxConnections: o.maxConns}
	e.secret = "not-in-any-registry-key-abcdef"
	if o.registry {
		pool, _ := pgtest.DB(t)
		reg := identity.NewRegistry(pool)
		app, err := reg.CreateApplication(ctx, "rig")
		if err != nil {
			t.Fatal(err)
		}
		secret, key, err := reg.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: app.ID, Name: "miner"})
		if err != nil {
			t.Fatal(err)
		}
		e.secret, e.app, e.keyID, e.reg = secret, app.ID, key.ID, reg
		cfg.Keys = identity.NewCache(reg, identity.CacheConfig{TTL: time.Minute})
	}
	if o.keys != nil {
		cfg.Keys = o.keys
	}
	var nodeTLS *tls.Config
	if o.tlsUp {
		c, err := beamsim.SelfSigned("node")
		if err != nil {
			t.Fatal(err)
		}
		nodeTLS, cfg.UpstreamTLS = c.ServerConfig(), c.ClientConfig()
		e.nodeTLS = cfg.UpstreamTLS
		if o.wrongNodeCA {
			other, err := beamsim.SelfSigned("impostor")
			if err != nil {
				t.Fatal(err)
			}
			cfg.UpstreamTLS = other.ClientConfig()
		}
	}
	if o.tlsDown {
		c, err := beamsim.SelfSigned("edge")
		if err != nil {
			t.Fatal(err)
		}
		cfg.DownstreamTLS, e.minerTLS = c.ServerConfig(), c.ClientConfig()
	}
	var err error
	e.node, err = beamsim.StartNode(nodeTLS, e.secret, e.unknown)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.node.Close() })
	e.cluster = kafkatest.Start(t, kafkatest.Options{Partitions: 2, Topics: []string{topic}})
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rec, err := record.New(record.Config{Brokers: e.cluster.Brokers, EdgeID: "edge-beam-test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Recorder, cfg.Upstream, cfg.Logger = rec, e.node.Addr(), log
	if o.upstream != "" {
		cfg.Upstream = o.upstream
	}
	e.edge, err = beam.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.edge.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.edge.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
		if err := rec.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return e
}

func (e *env) dial(t testing.TB) *beamsim.Miner {
	t.Helper()
	m, err := beamsim.Dial(e.addr, e.minerTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// closedStreams waits until n streams are recorded as closed and returns
// the raw records and the streams.
func (e *env) closedStreams(t *testing.T, n int) ([]kafka.Message, map[uuid.UUID][]*event.Event) {
	t.Helper()
	// Generous: a loaded machine (tests of other packages alongside) makes
	// recording slow.
	deadline := time.Now().Add(60 * time.Second)
	for {
		msgs := eventtest.ReadTopic(t, e.cluster.Brokers, topic, 2)
		streams := eventtest.StreamEvents(t, msgs)
		closed := 0
		for _, evs := range streams {
			if evs[len(evs)-1].GetClosed() != nil {
				closed++
			}
		}
		if closed >= n {
			return msgs, streams
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d streams closed after 60s", closed, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
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

// tally sums a stream's messages per direction.
type tally struct{ lines, bytes, lastSeq uint64 }

func tallies(evs []*event.Event) map[event.Direction]*tally {
	out := map[event.Direction]*tally{event.Direction_CLIENT_TO_UPSTREAM: {}, event.Direction_UPSTREAM_TO_CLIENT: {}}
	for _, ev := range evs {
		if m := ev.GetMessage(); m != nil {
			t := out[m.Direction]
			t.lines++
			t.bytes += m.WireSize
			t.lastSeq = ev.Seq
		}
	}
	return out
}

func TestBeamEdgeEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    options
	}{
		{"tls", options{tlsDown: true, tlsUp: true, registry: true}},
		{"plain", options{registry: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, tc.o)
			m := e.dial(t)
			code, err := m.Login(e.secret)
			if err != nil || code != sbeam.CodeLoginOK {
				t.Fatalf("login: %v %v", code, err)
			}
			codes, err := m.Mine(5)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range codes {
				if c != sbeam.CodeAccepted {
					t.Fatalf("solution %d: code %v", i, c)
				}
			}
			m.Close()
			msgs, streams := e.closedStreams(t, 1)
			evs := only(t, streams)

			op := evs[0].GetOpened()
			wantSec := event.Security_SECURITY_NONE
			if tc.o.tlsDown {
				wantSec = event.Security_TLS
			}
			if op.Protocol != event.Protocol_BEAM || op.Service != "beam" || op.Application != e.app || op.ApiKeyId != e.keyID ||
				op.ClientSecurity != wantSec || op.UpstreamSecurity != wantSec || op.Supplier != "sup" {
				t.Fatalf("opened %v; want application %s key %s security %v", op, e.app, e.keyID, wantSec)
			}
			mc, nc := m.Counts(), e.node.Counts()
			if mc.LinesOut != 6 || mc.LinesIn != 12 {
				t.Fatalf("miner counts %+v, want 6 out 12 in", mc)
			}
			if mc.LinesOut != nc.LinesIn || mc.BytesOut != nc.BytesIn || nc.LinesOut != mc.LinesIn || nc.BytesOut != mc.BytesIn {
				t.Fatalf("miner %+v and node %+v disagree", mc, nc)
			}
			ts := tallies(evs)
			up, down := ts[event.Direction_CLIENT_TO_UPSTREAM], ts[event.Direction_UPSTREAM_TO_CLIENT]
			if up.lines != mc.LinesOut || up.bytes != mc.BytesOut || down.lines != nc.LinesOut || down.bytes != nc.BytesOut {
				t.Fatalf("recorded up %+v down %+v; miner sent %+v, node sent %+v", up, down, mc, nc)
			}
			cl := evs[len(evs)-1].GetClosed()
			if cl.Reason != "miner closed" || cl.MessagesToUpstream != up.lines || cl.BytesToUpstream != up.bytes ||
				cl.GetForwardedToUpstreamThroughSeq() != up.lastSeq || cl.GetForwardedToClientThroughSeq() != down.lastSeq {
				t.Fatalf("closed %v; want reason miner closed, up %+v down %+v", cl, up, down)
			}
			login := evs[1].GetMessage()
			if login.Method != "login" || login.Role != event.Role_REQUEST || login.RpcId != `"login"` ||
				!bytes.Contains(login.Payload, []byte(sbeam.Redacted)) {
				t.Fatalf("login recorded as %v", login)
			}
			res := evs[2].GetMessage()
			if res.Method != "result" || res.Role != event.Role_RESPONSE || res.RpcId != `"login"` {
				t.Fatalf("login result recorded as %v", res)
			}
			for _, r := range msgs {
				if bytes.Contains(r.Value, []byte(e.secret)) || bytes.Contains(r.Key, []byte(e.secret)) {
					t.Fatalf("the api key is in Kafka record %d", r.Offset)
				}
			}
			if strings.Contains(e.logs.String(), e.secret) {
				t.Fatal("the api key is in the logs")
			}
		})
	}
}

func TestBeamUnknownKeyBillsItsHash(t *testing.T) {
	e := setup(t, options{registry: true})
	m := e.dial(t)
	if code, err := m.Login(e.unknown); err != nil || code != sbeam.CodeLoginOK {
		t.Fatalf("login: %v %v", code, err)
	}
	m.Close()
	msgs, streams := e.closedStreams(t, 1)
	op := only(t, streams)[0].GetOpened()
	if want := beam.UnknownKeyApplication(e.unknown); op.Application != want || op.ApiKeyId != "" || !strings.HasPrefix(want, "beam:") || len(want) != 13 {
		t.Fatalf("application %q key id %q, want %q and none", op.Application, op.ApiKeyId, want)
	}
	for _, r := range msgs {
		if bytes.Contains(r.Value, []byte(e.unknown)) {
			t.Fatal("the unknown api key is in Kafka")
		}
	}
}

func TestBeamRejectUnknownKeys(t *testing.T) {
	e := setup(t, options{registry: true, reject: true})
	m := e.dial(t)
	code, err := m.Login(e.unknown)
	if err != nil || code != sbeam.CodeLoginFailed {
		t.Fatalf("login: code %v err %v, want %v", code, err, sbeam.CodeLoginFailed)
	}
	m.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := m.Read(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read after -32003: %v, want the connection closed", err)
	}
	if n := e.node.Accepted.Load(); n != 0 {
		t.Fatalf("node dialled %d times", n)
	}
	if strings.Contains(e.logs.String(), e.unknown) {
		t.Fatal("the api key is in the logs")
	}
	// A known key still works.
	m2 := e.dial(t)
	if code, err := m2.Login(e.secret); err != nil || code != sbeam.CodeLoginOK {
		t.Fatalf("known key: %v %v", code, err)
	}
}

func TestBeamLineTooLong(t *testing.T) {
	e := setup(t, options{})
	m := e.dial(t)
	if code, err := m.Login(e.secret); err != nil || code != sbeam.CodeLoginOK {
		t.Fatalf("login: %v %v", code, err)
	}
	big := bytes.Repeat([]byte("a"), sbeam.MaxLineSize+10)
	go m.Conn().Write(big) // may fail once the edge drops us
	m.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := m.Read(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read after an over-long line: %v, want the connection dropped", err)
	}
	_, streams := e.closedStreams(t, 1)
	evs := only(t, streams)
	cl := evs[len(evs)-1].GetClosed()
	if cl.Reason != "line over 65536 bytes from miner" {
		t.Fatalf("close reason %q", cl.Reason)
	}
	if ts := tallies(evs); ts[event.Direction_CLIENT_TO_UPSTREAM].lines != 1 {
		t.Fatalf("%d lines recorded from the miner, want the login only", ts[event.Direction_CLIENT_TO_UPSTREAM].lines)
	}
	if n := e.node.Counts().LinesIn; n != 1 {
		t.Fatalf("node got %d lines, want the login only", n)
	}
}

func TestBeamInvalidJSONPassesThrough(t *testing.T) {
	e := setup(t, options{})
	m := e.dial(t)
	if code, err := m.Login(e.secret); err != nil || code != sbeam.CodeLoginOK {
		t.Fatalf("login: %v %v", code, err)
	}
	bad := "{\"api_key\":\"" + e.secret + "\",not json\n"
	if _, err := m.Conn().Write([]byte(bad)); err != nil {
		t.Fatal(err)
	}
	// The node drops a peer that sends unparsable JSON; the edge passes
	// that on.
	m.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := m.Read(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read: %v, want the node's close", err)
	}
	msgs, streams := e.closedStreams(t, 1)
	evs := only(t, streams)
	var got *event.Message
	for _, ev := range evs {
		if mm := ev.GetMessage(); mm != nil && mm.Direction == event.Direction_CLIENT_TO_UPSTREAM && mm.Role == event.Role_OTHER {
			got = mm
		}
	}
	if got == nil || got.WireSize != uint64(len(bad)) || got.Method != "" {
		t.Fatalf("invalid line recorded as %v, want role OTHER of %d bytes", got, len(bad))
	}
	if n := e.node.Counts().LinesIn; n != 2 {
		t.Fatalf("node got %d lines, want the login and the bad line", n)
	}
	if cl := evs[len(evs)-1].GetClosed(); cl.Reason != "node closed" {
		t.Fatalf("close reason %q, want node closed", cl.Reason)
	}
	for _, r := range msgs {
		if bytes.Contains(r.Value, []byte(e.secret)) {
			t.Fatal("the api key of the invalid line is in Kafka")
		}
	}
}

func TestBeamFirstLineNotLogin(t *testing.T) {
	e := setup(t, options{})
	m := e.dial(t)
	if err := m.Send(&sbeam.Solution{ID: "1", Nonce: strings.Repeat("0", 16), Output: strings.Repeat("0", 208)}); err != nil {
		t.Fatal(err)
	}
	m.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := m.Read(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read: %v, want the connection closed", err)
	}
	if n := e.node.Accepted.Load(); n != 0 {
		t.Fatalf("node dialled %d times", n)
	}
	// A broken login: its key is in no log line.
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write([]byte(`{"api_key":"` + e.secret + `","id":"login","method":"login",}` + "\n"))
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read: %v, want the connection closed", err)
	}
	if logs := e.logs.String(); strings.Count(logs, "not_login") != 2 || strings.Contains(logs, e.secret) {
		t.Fatalf("want two not_login log lines without the key:\n%s", logs)
	}
}

// expectClosed reads from m until the edge closes the connection, failing
// on a message or a timeout.
func expectClosed(t *testing.T, m *beamsim.Miner) {
	t.Helper()
	m.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if msg, err := m.Read(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read: %v %v, want the connection closed", msg, err)
	}
}

func TestBeamRevokedKeyRefusedByTheEdge(t *testing.T) {
	e := setup(t, options{registry: true})
	if _, err := e.reg.RevokeKey(context.Background(), e.keyID); err != nil {
		t.Fatal(err)
	}
	m := e.dial(t)
	if code, err := m.Login(e.secret); err != nil || code != sbeam.CodeLoginFailed {
		t.Fatalf("login with a revoked key: %v %v, want %v", code, err, sbeam.CodeLoginFailed)
	}
	expectClosed(t, m)
	if n := e.node.Accepted.Load(); n != 0 {
		t.Fatalf("node dialled %d times", n)
	}
}

func TestBeamNodeLineTooLong(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := sbeam.NewReader(c)
		if _, err := r.ReadLine(); err != nil {
			return
		}
		c.Write(bytes.Repeat([]byte(" "), sbeam.MaxLineSize))
		c.Write([]byte("\n"))
		io.Copy(io.Discard, c)
	}()
	e := setup(t, options{upstream: ln.Addr().String()})
	m := e.dial(t)
	if err := m.Send(&sbeam.Login{ID: "login", APIKey: e.secret}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, m)
	_, streams := e.closedStreams(t, 1)
	evs := only(t, streams)
	if cl := evs[len(evs)-1].GetClosed(); cl.Reason != "line over 65536 bytes from node" || cl.MessagesToClient != 0 || cl.MessagesToUpstream != 1 {
		t.Fatalf("closed %v, want the node's line dropped", cl)
	}
}

func TestBeamWrongNodeCertificate(t *testing.T) {
	e := setup(t, options{tlsUp: true, wrongNodeCA: true})
	m := e.dial(t)
	if err := m.Send(&sbeam.Login{ID: "login", APIKey: e.secret}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, m)
	if msgs := eventtest.ReadTopic(t, e.cluster.Brokers, topic, 2); len(msgs) != 0 {
		t.Fatalf("%d events recorded for a connection that never reached the node", len(msgs))
	}
	if logs := e.logs.String(); !strings.Contains(logs, "node unavailable") || !strings.Contains(logs, "certificate") {
		t.Fatalf("no clear log line for the refused node certificate:\n%s", logs)
	}
}

func TestBeamSilentMinerTimesOut(t *testing.T) {
	e := setup(t, options{tlsDown: true, loginTimeout: 200 * time.Millisecond})
	// A TLS handshake and no login: the edge gives up on its own.
	m := e.dial(t)
	start := time.Now()
	expectClosed(t, m)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v, want about the 200ms login timeout", d)
	}
	// No TLS handshake at all.
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read: %v, want the edge to close a connection with no handshake", err)
	}
	if n := e.node.Accepted.Load(); n != 0 {
		t.Fatalf("node dialled %d times", n)
	}
}

func TestBeamMinerNotReading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A node that answers the login with an endless stream of big lines.
	line := append(append([]byte(`{"id":"1","method":"cancel","pad":"`), bytes.Repeat([]byte("p"), 60000)...), "\"}\n"...)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := sbeam.NewReader(c).ReadLine(); err != nil {
			return
		}
		for {
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	}()
	e := setup(t, options{upstream: ln.Addr().String(), writeTimeout: 300 * time.Millisecond})
	m := e.dial(t)
	// A small receive buffer makes the edge's writes stall sooner (loopback
	// buffers otherwise hold megabytes, each line of which is recorded).
	if tc, ok := m.Conn().(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(16 << 10)
	}
	if err := m.Send(&sbeam.Login{ID: "login", APIKey: e.secret}); err != nil {
		t.Fatal(err)
	}
	// The miner reads nothing: the edge's writes stall, and it gives up.
	_, streams := e.closedStreams(t, 1)
	evs := only(t, streams)
	cl := evs[len(evs)-1].GetClosed()
	if cl.Reason != "miner lost" {
		t.Fatalf("closed %v, want miner lost", cl)
	}
	// The line whose write stalled was recorded and never crossed.
	ts := tallies(evs)
	if last := ts[event.Direction_UPSTREAM_TO_CLIENT].lastSeq; last == 0 || cl.GetForwardedToClientThroughSeq() >= last {
		t.Fatalf("forwarded through seq %d, last recorded toward the miner %d: want the stalled line not counted as crossed", cl.GetForwardedToClientThroughSeq(), last)
	}
}

func TestBeamMaxConnections(t *testing.T) {
	e := setup(t, options{maxConns: 1})
	first := e.dial(t) // holds the only slot, logging in or not
	if code, err := first.Login(e.secret); err != nil || code != sbeam.CodeLoginOK {
		t.Fatalf("login: %v %v", code, err)
	}
	second := e.dial(t)
	second.Send(&sbeam.Login{ID: "login", APIKey: e.secret})
	expectClosed(t, second)
	first.Close()
	e.closedStreams(t, 1)
	// The slot frees just after the stream's close is recorded.
	for i := 0; ; i++ {
		third := e.dial(t)
		code, err := third.Login(e.secret)
		if err == nil && code == sbeam.CodeLoginOK {
			break
		}
		if i == 50 {
			t.Fatalf("login after the slot freed: %v %v", code, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBeamCloseEndsConnectionsBeforeLogin(t *testing.T) {
	e := setup(t, options{})
	logged := e.dial(t)
	if code, err := logged.Login(e.secret); err != nil || code != sbeam.CodeLoginOK {
		t.Fatalf("login: %v %v", code, err)
	}
	silent, err := net.Dial("tcp", e.addr) // within the 10s login timeout
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	time.Sleep(50 * time.Millisecond) // accepted
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := e.edge.Close(ctx); err != nil {
		t.Fatalf("close with a miner yet to log in: %v", err)
	}
	_, streams := e.closedStreams(t, 1)
	evs := only(t, streams)
	if cl := evs[len(evs)-1].GetClosed(); cl.Reason != "edge shutting down" {
		t.Fatalf("close reason %q", cl.Reason)
	}
}

// stubKeys answers every key alike.
type stubKeys struct {
	p   identity.Principal
	err error
}

func (k stubKeys) Resolve(context.Context, string) (identity.Principal, error) { return k.p, k.err }

func TestBeamKeysThatDoNotBill(t *testing.T) {
	t.Run("registry unavailable", func(t *testing.T) {
		e := setup(t, options{keys: stubKeys{err: errors.New("connection refused")}})
		m := e.dial(t)
		m.Send(&sbeam.Login{ID: "login", APIKey: e.secret})
		expectClosed(t, m) // no answer: the miner retries later
		if n := e.node.Accepted.Load(); n != 0 {
			t.Fatalf("node dialled %d times", n)
		}
		if !strings.Contains(e.logs.String(), "registry_unavailable") {
			t.Fatalf("no log of the unavailable registry:\n%s", e.logs)
		}
	})
	t.Run("admin key", func(t *testing.T) {
		e := setup(t, options{keys: stubKeys{p: identity.Principal{KeyID: "key_admin", Role: identity.RoleAdmin}}})
		m := e.dial(t)
		if code, err := m.Login(e.secret); err != nil || code != sbeam.CodeLoginFailed {
			t.Fatalf("login with an admin key: %v %v, want %v", code, err, sbeam.CodeLoginFailed)
		}
		expectClosed(t, m)
		if n := e.node.Accepted.Load(); n != 0 {
			t.Fatalf("node dialled %d times", n)
		}
	})
}

// TestBeamNodeRefusalsPassThrough: the node's own -32003 and its rejection
// of a solution without the nonce prefix reach the miner, are recorded as
// errors, and the node's close ends the stream.
func TestBeamNodeRefusalsPassThrough(t *testing.T) {
	e := setup(t, options{})
	m := e.dial(t)
	if code, err := m.Login("a-key-the-node-does-not-know"); err != nil || code != sbeam.CodeLoginFailed {
		t.Fatalf("login: %v %v, want the node's %v", code, err, sbeam.CodeLoginFailed)
	}
	expectClosed(t, m)

	m2 := e.dial(t)
	if code, err := m2.Login(e.secret); err != nil || code != sbeam.CodeLoginOK {
		t.Fatalf("login: %v %v", code, err)
	}
	if err := m2.Send(&sbeam.Solution{ID: m2.Job, Nonce: "ffff000000000000", Output: strings.Repeat("ab", sbeam.OutputHexLen/2)}); err != nil {
		t.Fatal(err)
	}
	msg, err := m2.Read()
	if res, ok := msg.(*sbeam.Result); err != nil || !ok || res.Code != sbeam.CodeRejected {
		t.Fatalf("bad nonce prefix answered %v %v, want code %v", msg, err, sbeam.CodeRejected)
	}
	expectClosed(t, m2)

	_, streams := e.closedStreams(t, 2)
	if len(streams) != 2 {
		t.Fatalf("%d streams, want 2", len(streams))
	}
	for _, evs := range streams {
		var last *event.Message
		for _, ev := range evs {
			if mm := ev.GetMessage(); mm != nil && mm.Direction == event.Direction_UPSTREAM_TO_CLIENT {
				last = mm
			}
		}
		if last == nil || last.Method != "result" || last.Role != event.Role_ERROR {
			t.Fatalf("the node's last line recorded as %v, want an error result", last)
		}
		if cl := evs[len(evs)-1].GetClosed(); cl.Reason != "node closed" {
			t.Fatalf("close reason %q, want node closed", cl.Reason)
		}
	}
}

func TestBeamIdleTimeout(t *testing.T) {
	e := setup(t, options{tlsDown: true, tlsUp: true, idleTimeout: 300 * time.Millisecond})
	m := e.dial(t)
	if code, err := m.Login(e.secret); err != nil || code != sbeam.CodeLoginOK {
		t.Fatalf("login: %v %v", code, err)
	}
	// The job follows the login; then nothing moves and the edge closes.
	m.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := m.Read(); err != nil {
			if strings.Contains(err.Error(), "timeout") {
				t.Fatal("the edge did not close an idle connection")
			}
			break
		}
	}
	_, streams := e.closedStreams(t, 1)
	evs := only(t, streams)
	if cl := evs[len(evs)-1].GetClosed(); cl.Reason != "idle timeout" {
		t.Fatalf("closed %v, want idle timeout", cl)
	}
}

// TestBeamLinesPipelinedBehindLogin sends the login and a solution in one
// write, before the node has answered: both reach the node in order, each
// recorded.
func TestBeamLinesPipelinedBehindLogin(t *testing.T) {
	e := setup(t, options{})
	var buf bytes.Buffer
	w := sbeam.NewWriter(&buf)
	if err := w.WriteMessage(&sbeam.Login{ID: "login", APIKey: e.secret}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessage(&sbeam.Solution{ID: "1", Nonce: beamsim.NoncePrefix + "000000000001", Output: strings.Repeat("ab", sbeam.OutputHexLen/2)}); err != nil {
		t.Fatal(err)
	}
	m := e.dial(t)
	if _, err := m.Conn().Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	m.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	var methods []string
	var codes []sbeam.ResultCode
	for len(methods) < 4 { // login result, job 1, solution result, job 2
		msg, err := m.Read()
		if err != nil {
			t.Fatalf("after %v: %v", methods, err)
		}
		methods = append(methods, msg.Method().String())
		if r, ok := msg.(*sbeam.Result); ok {
			codes = append(codes, r.Code)
		}
	}
	if len(codes) != 2 || codes[0] != sbeam.CodeLoginOK || codes[1] != sbeam.CodeAccepted {
		t.Fatalf("results %v (lines %v), want login ok then accepted", codes, methods)
	}
	m.Close()
	_, streams := e.closedStreams(t, 1)
	var up []string
	for _, ev := range only(t, streams) {
		if msg := ev.GetMessage(); msg != nil && msg.Direction == event.Direction_CLIENT_TO_UPSTREAM {
			up = append(up, msg.Method)
		}
	}
	if strings.Join(up, ",") != "login,solution" {
		t.Fatalf("recorded toward the node %v, want login then solution", up)
	}
}
