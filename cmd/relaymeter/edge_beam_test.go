package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/beam"
	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/internal/beamsim"
	"github.com/relaymeter/relaymeter/internal/eventtest"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/ledger"
	sbeam "github.com/relaymeter/relaymeter/stratum/beam"
)

// TestBeamEdgeFlags: edge beam refuses to start without a way to secure
// each side, or rejecting unknown keys with no registry to know them.
func TestBeamEdgeFlags(t *testing.T) {
	base := []string{"edge", "beam", "--upstream", "127.0.0.1:1", "--supplier", "sup", "--kafka", "127.0.0.1:1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--plaintext-upstream"}, "--tls-cert"},
		{[]string{"--plaintext-downstream"}, "--upstream-ca"},
		{[]string{"--plaintext-downstream", "--plaintext-upstream", "--upstream-insecure"}, "choose one"},
		{[]string{"--plaintext-downstream", "--plaintext-upstream", "--reject-unknown-keys"}, "--database-url"},
	} {
		code, _, stderr := cli(t, append(base, tc.args...)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("edge beam %v: exit %d, %s; want an error naming %s", tc.args, code, stderr, tc.want)
		}
	}
}

// TestBeamEdgeCommand runs `relaymeter edge beam` in-process with TLS on
// both sides and a registry: a miner's lines and bytes are recorded exactly
// as both peers counted them, billed to its key's application, and the key
// reaches neither Kafka nor the logs.
func TestBeamEdgeCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, dbURL := pgtest.DB(t)
	ids := identity.NewRegistry(pool)
	app, err := ids.CreateApplication(ctx, "rig")
	if err != nil {
		t.Fatal(err)
	}
	secret, key, err := ids.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: app.ID})
	if err != nil {
		t.Fatal(err)
	}
	kc := kafkatest.Start(t, kafkatest.Options{Partitions: 4, Topics: []string{topicMessages}})
	nodeCert, err := beamsim.SelfSigned("node")
	if err != nil {
		t.Fatal(err)
	}
	edgeCert, err := beamsim.SelfSigned("edge")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	node, err := beamsim.StartNode(nodeCert.ServerConfig(), secret)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	addr := freeAddr(t)
	logs := &lockedBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"edge", "beam", "--listen", addr, "--upstream", node.Addr(),
			"--supplier", "sup", "--kafka", strings.Join(kc.Brokers, ","), "--spool-dir", "", "--edge-id", "beam",
			"--database-url", dbURL, "--log-level", "debug",
			"--tls-cert", write("edge.pem", edgeCert.CertPEM), "--tls-key", write("edge.key", edgeCert.KeyPEM),
			"--upstream-ca", write("node.pem", nodeCert.CertPEM)},
			stdio{in: strings.NewReader(""), out: logs, err: logs})
	}()
	var m *beamsim.Miner
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m, err = beamsim.Dial(addr, edgeCert.ClientConfig()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge beam never answered: %v\n%s", err, logs)
		}
	}
	if code, err := m.Login(secret); err != nil || code != sbeam.CodeLoginOK {
		t.Fatalf("login: %v %v\n%s", code, err, logs)
	}
	if _, err := m.Mine(3); err != nil {
		t.Fatal(err)
	}
	mc := m.Counts()
	// The edge closes the stream itself as it stops: the miner is still
	// connected.
	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("edge beam exited %d:\n%s", code, logs)
		}
	case <-ctx.Done():
		t.Fatal("edge beam did not stop")
	}
	m.Close()
	msgs := eventtest.ReadTopic(t, kc.Brokers, topicMessages, 4)
	streams := eventtest.StreamEvents(t, msgs)
	if len(streams) != 1 {
		t.Fatalf("%d streams, want 1", len(streams))
	}
	for _, evs := range streams {
		op, cl := evs[0].GetOpened(), evs[len(evs)-1].GetClosed()
		if op.Application != app.ID || op.ApiKeyId != key.ID || op.ClientSecurity != event.Security_TLS || op.UpstreamSecurity != event.Security_TLS {
			t.Fatalf("opened %v", op)
		}
		if cl == nil || cl.Reason != "edge shutting down" || cl.MessagesToUpstream != mc.LinesOut || cl.BytesToUpstream != mc.BytesOut ||
			cl.MessagesToClient != mc.LinesIn || cl.BytesToClient != mc.BytesIn {
			t.Fatalf("closed %v; the miner counted %+v", cl, mc)
		}
	}
	for _, r := range msgs {
		if bytes.Contains(r.Value, []byte(secret)) {
			t.Fatal("the api key is in Kafka")
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the api key is in the logs")
	}
}

// TestBeamEndToEndMetered sends a miner's traffic through a Beam edge on
// the stack's recorder, through Kafka and the meter, and reads the exact
// line count back through GraphQL; then greps every Postgres row for the
// api key.
func TestBeamEndToEndMetered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ts := startTestStack(t, ctx, "e2e-beam", "ws://127.0.0.1:1/")
	if err := syncServices(ctx, ledger.New(ts.pool), []serviceConfig{{ID: "beam", Protocol: "BEAM", Policy: "beam-solutions"}}); err != nil {
		t.Fatal(err)
	}
	ids := identity.NewRegistry(ts.pool)
	app, err := ids.CreateApplication(ctx, "rig")
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := ids.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: app.ID})
	if err != nil {
		t.Fatal(err)
	}
	node, err := beamsim.StartNode(nil, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	edge, err := beam.New(beam.Config{Recorder: ts.rec, Upstream: node.Addr(), Supplier: "sup",
		Keys: identity.NewCache(ids, identity.CacheConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listenTCP()
	if err != nil {
		t.Fatal(err)
	}
	go edge.Serve(ln)
	defer edge.Close(context.Background())
	m, err := beamsim.Dial(ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := m.Login(secret); err != nil || code != sbeam.CodeLoginOK {
		t.Fatalf("login: %v %v", code, err)
	}
	codes, err := m.Mine(4)
	if err != nil {
		t.Fatal(err)
	}
	var accepted int64
	for _, c := range codes {
		if c == sbeam.CodeAccepted {
			accepted++
		}
	}
	m.Close()
	c := m.Counts()
	lines := int64(c.LinesIn + c.LinesOut)
	got := waitUsage(t, ctx, "http://"+ts.api, "test-key", `{service:"beam", application:"`+app.ID+`"}`, lines)
	// The beam-solutions policy: one unit per accepted solution.
	if got.Messages != lines || got.Bytes != int64(c.BytesIn+c.BytesOut) || got.Relays != accepted || accepted == 0 {
		var fs []string
		if rows, err := ts.pool.Query(ctx, `SELECT kind || ': ' || detail FROM findings ORDER BY id LIMIT 5`); err == nil {
			for rows.Next() {
				var f string
				rows.Scan(&f)
				fs = append(fs, f)
			}
			rows.Close()
		}
		t.Logf("findings: %q", fs) // why a message was not priced
		t.Fatalf("usage %+v, want %d messages, %d bytes and %d relays (accepted solutions of %v)", got, lines, c.BytesIn+c.BytesOut, accepted, codes)
	}
	rows, err := ts.pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) == 0 {
		t.Fatal("no tables to grep")
	}
	for _, tb := range tables {
		var n int
		q := `SELECT count(*) FROM "` + tb + `" t WHERE strpos(t::text, $1) > 0`
		if err := ts.pool.QueryRow(ctx, q, secret).Scan(&n); err != nil {
			t.Fatalf("%s: %v", tb, err)
		}
		if n != 0 {
			t.Fatalf("the api key is in %d rows of %s", n, tb)
		}
	}
}

func listenTCP() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
