package ws_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/ingest/ws"
	"github.com/relaymeter/relaymeter/internal/eventtest"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
)

const topic = record.DefaultTopic

// syncBuffer is a log sink safe for concurrent writes.
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

type env struct {
	cluster *kafkatest.Cluster
	rec     *record.Recorder
	up      *upstream
	edge    *ws.Edge
	srv     *httptest.Server
	logs    *syncBuffer
	reg     *prometheus.Registry
	closed  bool
}

func setup(t testing.TB, mod func(*ws.Config)) *env {
	t.Helper()
	e := &env{logs: &syncBuffer{}}
	e.cluster = kafkatest.Start(t, kafkatest.Options{Partitions: 2, Topics: []string{topic}})
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	e.rec, err = record.New(record.Config{Brokers: e.cluster.Brokers, EdgeID: "edge-ws-test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.up = startUpstream(t)
	e.reg = prometheus.NewRegistry()
	// Open access unless mod says otherwise: most tests name the
	// application in the path, ws://HOST/<application>.
	cfg := ws.Config{Recorder: e.rec, Upstream: e.up.url(), Supplier: "sup", PayloadCapture: -1, Logger: log, Registerer: e.reg, OpenAccess: true}
	if mod != nil {
		mod(&cfg)
	}
	e.edge, err = ws.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.edge)
	t.Cleanup(func() {
		if !e.closed {
			e.close(t)
		}
		e.srv.Close()
	})
	return e
}

// metric is the value of the edge's metric name (with the label value, if
// the metric has one), 0 if it has not been set.
func (e *env) metric(t testing.TB, name, label string) float64 {
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
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// waitFor polls cond until it holds, failing t after 30s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
	}
}

func (e *env) url(app string) string { return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/" + app }

func (e *env) dial(t *testing.T, app string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.url(app), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(4 << 20)
	return c
}

// close shuts the edge and the recorder down, flushing every event.
func (e *env) close(t testing.TB) {
	t.Helper()
	e.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.edge.Close(ctx); err != nil {
		t.Error(err)
	}
	if err := e.rec.Close(ctx); err != nil {
		t.Error(err)
	}
}

// events closes the environment and returns the recorded streams.
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

// exchange sends req and reads n messages back.
func exchange(t *testing.T, c *websocket.Conn, typ websocket.MessageType, req string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, []byte(req)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for range n {
		_, p, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(p))
	}
	return out
}

// read reads one message from c.
func read(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, p, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(p)
}

// subscriptionID is the result of an eth_subscribe response.
func subscriptionID(t *testing.T, response string) string {
	t.Helper()
	var r struct{ Result string }
	if err := json.Unmarshal([]byte(response), &r); err != nil || r.Result == "" {
		t.Fatalf("eth_subscribe answered %s", response)
	}
	return r.Result
}

type wantMsg struct {
	dir    event.Direction
	role   event.Role
	method string
	id     string
	sub    string
	batch  []string
	binary bool
}

const (
	up   = event.Direction_CLIENT_TO_UPSTREAM
	down = event.Direction_UPSTREAM_TO_CLIENT
)

// TestTranscript drives a real client through the edge to a real upstream
// and checks the exact events recorded.
func TestTranscript(t *testing.T) {
	e := setup(t, nil)
	c := e.dial(t, "my-app")
	var sent, recv [2]uint64 // messages, bytes
	count := func(req string, got []string) {
		sent[0]++
		sent[1] += uint64(len(req))
		for _, g := range got {
			recv[0]++
			recv[1] += uint64(len(g))
		}
	}
	step := func(typ websocket.MessageType, req string, n int) []string {
		got := exchange(t, c, typ, req, n)
		count(req, got)
		return got
	}
	step(websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 1)
	subscribe := `{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["newHeads"]}`
	sub := subscriptionID(t, step(websocket.MessageText, subscribe, 1)[0])
	for range 2 { // two heads, pushed to the edge before NewHead returns
		e.up.node.NewHead(context.Background())
		recv[0]++
		recv[1] += uint64(len(read(t, c)))
	}
	step(websocket.MessageText, `{"jsonrpc":"2.0","id":3,"method":"eth_blockNumber"}`, 1)
	step(websocket.MessageText, `{"jsonrpc":"2.0","id":4,"method":"eth_unsubscribe","params":["`+sub+`"]}`, 1)
	step(websocket.MessageText, `[{"jsonrpc":"2.0","id":5,"method":"eth_chainId"},{"jsonrpc":"2.0","id":6,"method":"eth_blockNumber"}]`, 1)
	step(websocket.MessageText, `{"jsonrpc":"2.0","id":"x","method":"eth_nope"}`, 1)
	step(websocket.MessageText, `hello`, 1)
	step(websocket.MessageBinary, "\x00\x01\x02", 1)
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	if code := e.up.closed(t); code != websocket.StatusNormalClosure {
		t.Fatalf("upstream saw close %d, want 1000", code)
	}
	evs := only(t, e.events(t))

	want := []wantMsg{
		{dir: up, role: event.Role_REQUEST, method: "eth_chainId", id: "1"},
		{dir: down, role: event.Role_RESPONSE, id: "1"},
		{dir: up, role: event.Role_REQUEST, method: "eth_subscribe", id: "2"},
		{dir: down, role: event.Role_RESPONSE, id: "2", sub: sub},
		{dir: down, role: event.Role_NOTIFICATION, method: "eth_subscription", sub: sub},
		{dir: down, role: event.Role_NOTIFICATION, method: "eth_subscription", sub: sub},
		{dir: up, role: event.Role_REQUEST, method: "eth_blockNumber", id: "3"},
		{dir: down, role: event.Role_RESPONSE, id: "3"},
		{dir: up, role: event.Role_REQUEST, method: "eth_unsubscribe", id: "4", sub: sub},
		{dir: down, role: event.Role_RESPONSE, id: "4"},
		{dir: up, role: event.Role_REQUEST, batch: []string{"eth_chainId", "eth_blockNumber"}},
		{dir: down, role: event.Role_RESPONSE, batch: []string{"", ""}},
		{dir: up, role: event.Role_REQUEST, method: "eth_nope", id: `"x"`},
		{dir: down, role: event.Role_ERROR, id: `"x"`},
		{dir: up, role: event.Role_OTHER},
		{dir: down, role: event.Role_OTHER},
		{dir: up, role: event.Role_OTHER, binary: true},
		{dir: down, role: event.Role_OTHER, binary: true},
	}
	if len(evs) != len(want)+2 {
		t.Fatalf("%d events, want %d", len(evs), len(want)+2)
	}
	op := evs[0].GetOpened()
	if op == nil || op.Protocol != event.Protocol_WEBSOCKET_JSONRPC || op.Application != "my-app" || op.Service != "eth" ||
		op.Supplier != "sup" || op.ClientAddr == "" || op.UpstreamAddr != strings.TrimSuffix(e.up.url(), "/") ||
		op.UpstreamSecurity != event.Security_SECURITY_NONE || op.PayloadCapture != -1 {
		t.Fatalf("opened %v", op)
	}
	for i, w := range want {
		m := evs[i+1].GetMessage()
		if m == nil {
			t.Fatalf("event %d is not a message", i+2)
		}
		got := wantMsg{dir: m.Direction, role: m.Role, method: m.Method, id: m.RpcId, sub: m.SubscriptionId, batch: m.BatchMethods, binary: m.Binary}
		if got.dir != w.dir || got.role != w.role || got.method != w.method || got.id != w.id || got.sub != w.sub ||
			!slices.Equal(got.batch, w.batch) || int(m.BatchSize) != len(w.batch) || got.binary != w.binary {
			t.Fatalf("event %d: got %+v\nwant %+v", i+2, got, w)
		}
		if m.WireSize != m.PayloadSize || m.PayloadSize != uint64(len(m.Payload)) || len(m.PayloadSha256) != 32 {
			t.Fatalf("event %d: sizes %d/%d, payload %d", i+2, m.WireSize, m.PayloadSize, len(m.Payload))
		}
	}
	if p := string(evs[1].GetMessage().Payload); p != `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}` {
		t.Fatalf("first payload %q", p)
	}
	cl := evs[len(evs)-1].GetClosed()
	if cl == nil || cl.Reason != "client closed" || cl.CloseCode != 1000 ||
		cl.MessagesToUpstream != sent[0] || cl.BytesToUpstream != sent[1] || cl.MessagesToClient != recv[0] || cl.BytesToClient != recv[1] {
		t.Fatalf("closed %v, sent %v received %v", cl, sent, recv)
	}
}

// TestCloseCodes: a close code from either side reaches the other.
func TestCloseCodes(t *testing.T) {
	e := setup(t, nil)
	ctx := context.Background()

	c := e.dial(t, "app")
	exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 1)
	if err := c.Close(4002, "client says bye"); err != nil {
		t.Fatal(err)
	}
	if code := e.up.closed(t); code != 4002 {
		t.Fatalf("upstream saw %d, want 4002", code)
	}

	c = e.dial(t, "app")
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"ethsim_close","params":[4001,"bye"]}`)); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye" {
		t.Fatalf("client read %v, want close 4001 bye", err)
	}
	e.up.closed(t)
	_ = c.CloseNow()

	streams := e.events(t)
	var got []string
	for _, evs := range streams {
		cl := evs[len(evs)-1].GetClosed()
		got = append(got, fmt.Sprintf("%s %d", cl.GetReason(), cl.GetCloseCode()))
	}
	slices.Sort(got)
	if want := []string{"client closed 4002", "upstream closed 4001"}; !slices.Equal(got, want) {
		t.Fatalf("closes %q, want %q", got, want)
	}
}

// TestMaxMessageSize: a message over the limit from either side closes both
// sides with 1009, and is neither forwarded nor recorded.
func TestMaxMessageSize(t *testing.T) {
	e := setup(t, func(c *ws.Config) { c.MaxMessageSize = 64 << 10 })
	ctx := context.Background()

	c := e.dial(t, "app")
	if err := c.Write(ctx, websocket.MessageText, bytes.Repeat([]byte("x"), 64<<10+1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("client read %v, want 1009", err)
	}
	if code := e.up.closed(t); code != websocket.StatusMessageTooBig {
		t.Fatalf("upstream saw %d, want 1009", code)
	}

	c = e.dial(t, "app")
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"ethsim_bytes","params":[65536]}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("client read %v, want 1009", err)
	}
	if code := e.up.closed(t); code != websocket.StatusMessageTooBig {
		t.Fatalf("upstream saw %d, want 1009", code)
	}

	streams := e.events(t)
	var got []string
	for _, evs := range streams {
		cl := evs[len(evs)-1].GetClosed()
		got = append(got, fmt.Sprintf("%s %d %d %d through %d %d", cl.GetReason(), cl.GetCloseCode(), cl.GetMessagesToUpstream(), cl.GetMessagesToClient(),
			cl.GetForwardedToUpstreamThroughSeq(), cl.GetForwardedToClientThroughSeq()))
	}
	slices.Sort(got)
	if want := []string{"client message too big 1009 0 0 through 0 0", "upstream message too big 1009 1 0 through 2 0"}; !slices.Equal(got, want) {
		t.Fatalf("closes %q, want %q", got, want)
	}
}

// TestUpstreamDown: with no upstream the client gets HTTP 502, nothing is
// recorded, and the upstream URL's secrets appear in no log.
func TestUpstreamDown(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	addr := dead.Listener.Addr().String()
	dead.Close()
	e := setup(t, func(c *ws.Config) { c.Upstream = "ws://user:SECRETPASS@" + addr + "/v3/SECRETPATH?apikey=SECRETKEY" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, e.url("app"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("dial: %v, response %v; want HTTP 502", err, resp)
	}
	if n := e.rec.Stats().Recorded; n != 0 {
		t.Fatalf("%d events recorded", n)
	}
	if logs := e.logs.String(); strings.Contains(logs, "SECRET") || !strings.Contains(logs, "upstream unavailable") {
		t.Fatalf("logs leak a secret or miss the failure:\n%s", logs)
	}
}

// TestSecretsRedacted: credentials in the upstream URL are used but never
// recorded.
func TestSecretsRedacted(t *testing.T) {
	u := startUpstream(t)
	e := setup(t, func(c *ws.Config) {
		c.Upstream = strings.Replace(u.url(), "ws://", "ws://user:SECRETPASS@", 1) + "/v3/SECRETPATH?apikey=SECRETKEY"
	})
	c := e.dial(t, "app")
	exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 1)
	_ = c.Close(websocket.StatusNormalClosure, "")
	u.closed(t)
	evs := only(t, e.events(t))
	if addr := evs[0].GetOpened().GetUpstreamAddr(); addr != "ws://"+u.srv.Listener.Addr().String() {
		t.Fatalf("upstream addr %q", addr)
	}
	if strings.Contains(e.logs.String(), "SECRET") {
		t.Fatalf("logs leak a secret:\n%s", e.logs.String())
	}
}

func TestBadRequests(t *testing.T) {
	e := setup(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, e.url(""), nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("no application: %v, %v; want HTTP 400", err, resp)
	}
	resp, err := http.Get(e.srv.URL + "/app")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d, want 426", resp.StatusCode)
	}
	if n := e.rec.Stats().Recorded; n != 0 {
		t.Fatalf("%d events recorded", n)
	}
}

func TestConfigValidate(t *testing.T) {
	rec := &record.Recorder{}
	for _, tc := range []struct {
		name string
		cfg  ws.Config
		ok   bool
	}{
		{"ok", ws.Config{Recorder: rec, Upstream: "wss://node.example/ws", OpenAccess: true}, true},
		{"keys", ws.Config{Recorder: rec, Upstream: "wss://node.example/ws", Keys: identity.NewCache(nil, identity.CacheConfig{})}, true},
		{"neither keys nor open access", ws.Config{Recorder: rec, Upstream: "wss://node.example/ws"}, false},
		{"no recorder", ws.Config{Upstream: "ws://x", OpenAccess: true}, false},
		{"http upstream", ws.Config{Recorder: rec, Upstream: "http://x", OpenAccess: true}, false},
		{"no host", ws.Config{Recorder: rec, Upstream: "ws:///path", OpenAccess: true}, false},
		{"negative size", ws.Config{Recorder: rec, Upstream: "ws://x", MaxMessageSize: -1, OpenAccess: true}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
	err := ws.Config{Recorder: rec, Upstream: "ftp://u:SECRETPASS@x/?k=SECRETKEY", OpenAccess: true}.Validate()
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("Validate error %v leaks a secret or is missing", err)
	}
}

// TestConcurrentNoLeaks runs connections in parallel while the edge pings
// both sides, checks each stream is complete, and that the edge's
// goroutines are gone once they closed.
//
// Every client reads all the time, so it answers pings however the machine
// schedules it (an earlier version wrote all its requests before reading,
// and under load missed pongs: the edge rightly dropped it), and stays
// until the edge has pinged it, so pings are proven to run mid-stream. The
// interval is a second: a pong is due within it, and a process under the
// race detector on a loaded machine has been seen to stall for 300ms.
func TestConcurrentNoLeaks(t *testing.T) {
	e := setup(t, func(c *ws.Config) {
		c.PingInterval = time.Second
		c.Limits.MaxConnectionsPerIP = -1 // every client is on loopback
	})
	// Warm up: the first connection starts the recorder's partition writers.
	c := e.dial(t, "warm")
	exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}`, 1)
	_ = c.Close(websocket.StatusNormalClosure, "")
	e.up.closed(t)

	const conns, reqs = 8, 20
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pipelined(e.url(fmt.Sprintf("app%d", i)), reqs); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for range conns {
		if code := e.up.closed(t); code != websocket.StatusNormalClosure {
			t.Errorf("an upstream connection ended with %d, want 1000\n%s", code, e.logs.String())
		}
	}
	settle(t)
	if n := e.metric(t, "relaymeter_ws_edge_buffer_bytes", ""); n != 0 {
		t.Fatalf("%v buffer bytes still held after every connection closed", n)
	}

	streams := e.events(t)
	if len(streams) != conns+1 {
		t.Fatalf("%d streams, want %d", len(streams), conns+1)
	}
	for id, evs := range streams {
		cl := evs[len(evs)-1].GetClosed()
		if evs[0].GetOpened().GetApplication() == "warm" {
			continue
		}
		if cl.GetReason() != "client closed" || cl.GetMessagesToUpstream() != reqs || cl.GetMessagesToClient() != reqs || len(evs) != 2*reqs+2 {
			t.Fatalf("stream %s: %d events, closed %v\n%s", id, len(evs), cl, e.logs.String())
		}
	}
}

// pipelined sends reqs requests on a new connection to url while reading
// their responses, waits to be pinged, and closes normally.
func pipelined(url string, reqs int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pinged := make(chan struct{}, 1)
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return true
	}})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	read := make(chan error, 1)
	go func() {
		for j := range reqs {
			if _, _, err := c.Read(ctx); err != nil {
				read <- fmt.Errorf("response %d: %w", j, err)
				return
			}
		}
		read <- nil
	}()
	for j := range reqs {
		if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"net_version"}`, j)); err != nil {
			return err
		}
	}
	if err := <-read; err != nil {
		return err
	}
	c.CloseRead(ctx) // answers pings until the close
	select {
	case <-pinged:
	case <-ctx.Done():
		return errors.New("never pinged")
	}
	return c.Close(websocket.StatusNormalClosure, "")
}

// settle waits until no goroutine runs code of the edge or the WebSocket
// library, and fails with a dump if that never happens.
func settle(t *testing.T) {
	t.Helper()
	var dump string
	for i := 0; i < 400; i++ {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		leaked := 0
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "relaymeter/ingest/ws.") || strings.Contains(g, "coder/websocket") {
				leaked++
			}
		}
		if leaked == 0 {
			return
		}
		dump = string(buf)
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("edge goroutines left after every connection closed:\n%s", dump)
}

// TestEdgeClose: shutting the edge down closes live connections with 1001
// on both sides and records their streams as closed.
func TestEdgeClose(t *testing.T) {
	e := setup(t, nil)
	c := e.dial(t, "app")
	exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, 1)
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.Read(context.Background())
		readErr <- err
	}()
	evs := only(t, e.events(t)) // closes the edge first
	if err := <-readErr; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("client read %v, want 1001", err)
	}
	if code := e.up.closed(t); code != websocket.StatusGoingAway {
		t.Fatalf("upstream saw %d, want 1001", code)
	}
	cl := evs[len(evs)-1].GetClosed()
	if cl.GetReason() != "edge shutting down" || cl.GetCloseCode() != 1001 || cl.GetMessagesToUpstream() != 1 || cl.GetMessagesToClient() != 1 {
		t.Fatalf("closed %v", cl)
	}
	if _, resp, err := websocket.Dial(context.Background(), e.url("app"), nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after close: %v, %v; want HTTP 503", err, resp)
	}
}

// TestHostileStrings: what a client puts in the path and the envelope
// reaches the event cleaned (valid UTF-8, no NUL, within the length
// limits), while the payload and its sha256 keep the bytes as they were.
func TestHostileStrings(t *testing.T) {
	e := setup(t, nil)
	long := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	ff := "\uFFFD"
	c := e.dial(t, "%00") // the application: a NUL
	steps := []struct {
		send  string
		req   wantMsg // with its response, as the node echoes the id
		reply wantMsg
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"eth_\u0000"}`,
			wantMsg{method: "eth_" + ff, id: "1"}, wantMsg{role: event.Role_ERROR, id: "1"}},
		{"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\xfe\",\"method\":\"eth_\xffx\"}", // invalid UTF-8
			wantMsg{method: "eth_" + ff + "x", id: `"` + ff + ff + `"`}, wantMsg{role: event.Role_ERROR, id: `"` + ff + ff + `"`}},
		{`{"jsonrpc":"2.0","id":"` + long('i', 300) + `","method":"` + long('m', 200) + `"}`,
			wantMsg{method: long('m', event.MaxMethodLen), id: `"` + long('i', event.MaxIDLen-1)},
			wantMsg{role: event.Role_ERROR, id: `"` + long('i', event.MaxIDLen-1)}},
		{`{"jsonrpc":"2.0","id":5,"method":"eth_unsubscribe","params":["0x\u0000\u0000"]}`,
			wantMsg{method: "eth_unsubscribe", id: "5", sub: "0x" + ff + ff}, wantMsg{role: event.Role_RESPONSE, id: "5"}},
		{`{"jsonrpc":"2.0","id":6,"method":"eth_unsubscribe","params":["` + long('s', 300) + `"]}`,
			wantMsg{method: "eth_unsubscribe", id: "6", sub: long('s', event.MaxIDLen)}, wantMsg{role: event.Role_RESPONSE, id: "6"}},
		{`[{"jsonrpc":"2.0","id":7,"method":"eth_\u0000"},{"jsonrpc":"2.0","id":8,"method":"` + long('b', 129) + `"}]`,
			wantMsg{batch: []string{"eth_" + ff, long('b', event.MaxMethodLen)}}, wantMsg{role: event.Role_RESPONSE, batch: []string{"", ""}}},
	}
	var replies []string
	for _, s := range steps {
		replies = append(replies, exchange(t, c, websocket.MessageText, s.send, 1)[0])
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	e.up.closed(t)
	evs := only(t, e.events(t))
	if app := evs[0].GetOpened().GetApplication(); app != ff {
		t.Fatalf("application %q, want %q", app, ff)
	}
	if len(evs) != 2*len(steps)+2 {
		t.Fatalf("%d events, want %d", len(evs), 2*len(steps)+2)
	}
	for i, s := range steps {
		s.req.dir, s.reply.dir = up, down
		if s.req.role == 0 {
			s.req.role = event.Role_REQUEST
		}
		for j, w := range []wantMsg{s.req, s.reply} {
			m := evs[1+2*i+j].GetMessage()
			got := wantMsg{dir: m.Direction, role: m.Role, method: m.Method, id: m.RpcId, sub: m.SubscriptionId, batch: m.BatchMethods}
			if got.dir != w.dir || got.role != w.role || got.method != w.method || got.id != w.id || got.sub != w.sub || !slices.Equal(got.batch, w.batch) {
				t.Errorf("step %d message %d: got %#v\nwant %#v", i, j, got, w)
			}
			raw := []string{s.send, replies[i]}[j]
			if sum := sha256.Sum256([]byte(raw)); string(m.Payload) != raw || !bytes.Equal(m.PayloadSha256, sum[:]) {
				t.Errorf("step %d message %d: payload %q (sha256 %x), want the bytes sent", i, j, m.Payload, m.PayloadSha256)
			}
		}
	}
}
