package main

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/ledger"
)

// testStack is the whole of relaymeter in this process, on a fresh
// database and an in-process Kafka, in front of upstream.
type testStack struct {
	edge, api string // host:port
	cluster   *kafkatest.Cluster
	pool      *pgxpool.Pool
	url       string // the database's
	rec       *record.Recorder
}

// settled waits until the recorder holds nothing: every event it took is
// in Kafka, none buffered or waiting in its spool.
func (ts *testStack) settled(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := ts.rec.Stats()
		if st.Buffered == 0 && !st.Spooling && st.SpoolBytes == 0 && st.StreamsOpen == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recorder never settled: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startTestStack runs the stack until t ends; extra runs beside it (an
// upstream's goroutines) and ends with it.
func startTestStack(t *testing.T, ctx context.Context, edgeID, upstream string, extra ...func(context.Context) error) *testStack {
	t.Helper()
	return startTestStackSpool(t, ctx, edgeID, upstream, "", extra...)
}

// startTestStackSpool is startTestStack with the recorder spooling in
// spoolDir ("": none).
func startTestStackSpool(t *testing.T, ctx context.Context, edgeID, upstream, spoolDir string, extra ...func(context.Context) error) *testStack {
	t.Helper()
	pool, url := pgtest.DB(t)
	kc := kafkatest.Start(t, kafkatest.Options{Partitions: 4, Topics: []string{topicMessages}})
	store := ledger.New(pool)
	if err := syncServices(ctx, store, []serviceConfig{{ID: "eth", Protocol: "WEBSOCKET_JSONRPC"}}); err != nil {
		t.Fatal(err)
	}
	st, err := newStack(stackConfig{brokers: kc.Brokers, store: store, reg: newRegistry(), log: testLogger(t),
		adminKey: "test-key", edgeID: edgeID, wsUpstream: upstream, service: "eth", supplier: "sup", spoolDir: spoolDir, capture: 1024,
		// Keys resolve, and the tests that name the application in the
		// path (ws://HOST/<application>) keep doing so.
		keys: identity.NewCache(identity.NewRegistry(pool), identity.CacheConfig{}), openAccess: true})
	if err != nil {
		t.Fatal(err)
	}
	edgeSrv, err := listen("edge", "127.0.0.1:0", st.edge)
	if err != nil {
		t.Fatal(err)
	}
	apiSrv, err := listen("api", "127.0.0.1:0", apiMux(st.api, newRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	for _, fn := range extra {
		g.Go(func() error { return fn(gctx) })
	}
	st.run(g, gctx, edgeSrv, apiSrv)
	t.Cleanup(func() {
		stop()
		if err := g.Wait(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})
	return &testStack{edge: edgeSrv.addr(), api: apiSrv.addr(), cluster: kc, pool: pool, url: url, rec: st.rec}
}
