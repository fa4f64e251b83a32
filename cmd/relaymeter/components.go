package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/relaymeter/relaymeter/graphql"
	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/ingest/ws"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
)

// stackConfig is what `dev` wires into one process: the same components
// `edge ws`, `meter` and `serve` run one per process.
type stackConfig struct {
	brokers                       []string
	store                         *ledger.Store
	reg                           *prometheus.Registry
	log                           *slog.Logger
	adminKey, edgeID              string
	wsUpstream, service, supplier string
	wsRoutes                      map[string]ws.Route // the edge's named services
	maxHeadLag                    uint64              // of the edge's pools (0: the edge's default)
	forwarding                    ws.Forwarding
	spoolDir                      string          // the recorder's spool ("": none)
	keys                          *identity.Cache // resolves API keys, for the edge and the API
	openAccess                    bool            // the edge also takes ws://HOST/<application>
	capture                       int64           // payload bytes the edge records for the default service
	wsLimits                      ws.Limits       // what one client may do on the default service (zero: the defaults)
	trustedProxies                []netip.Prefix  // whose X-Forwarded-For names the client address
	apiRate                       float64
	apiBurst                      int
	chain                         meter.Chain // the settlement's chain (nil: no settlement)
	settlement                    ledger.SettlementConfig
}

// stack is every component of relaymeter in one process.
type stack struct {
	rec   *record.Recorder
	edge  *ws.Edge
	meter *meter.Meter
	api   http.Handler
	log   *slog.Logger
	// edges counts the edges of the process still serving or flushing
	// their recorders (the WebSocket edge, and dev's mining edges): the
	// meter drains the log once they are all done.
	edges sync.WaitGroup
}

func newStack(c stackConfig) (*stack, error) {
	if c.keys == nil {
		c.keys = identity.NewCache(identity.NewRegistry(c.store.Pool()), identity.CacheConfig{})
	}
	rec, err := record.New(record.Config{Brokers: c.brokers, Topic: topicMessages, EdgeID: c.edgeID, SpoolDir: c.spoolDir, Logger: c.log, Registerer: c.reg})
	if err != nil {
		return nil, err
	}
	edge, err := ws.New(ws.Config{Recorder: rec, Upstream: c.wsUpstream, Service: c.service, Services: c.wsRoutes, Supplier: c.supplier,
		PayloadCapture: c.capture, Forwarding: c.forwarding, Keys: c.keys, OpenAccess: c.openAccess, Logger: c.log, Registerer: c.reg,
		Limits: c.wsLimits, TrustedProxies: c.trustedProxies, MaxHeadLag: c.maxHeadLag})
	if err != nil {
		rec.Close(context.Background())
		return nil, err
	}
	m, err := meter.New(meter.Config{Brokers: c.brokers, Topic: topicMessages, Store: c.store, Chain: c.chain, Settlement: c.settlement,
		Logger: c.log, Registerer: c.reg})
	if err != nil {
		rec.Close(context.Background())
		return nil, err
	}
	apiCfg := apiConfig(c.store, c.adminKey, c.keys, c.log, c.apiRate, c.apiBurst)
	apiCfg.WhatIf = whatIfFor(c.brokers, c.store, c.log)
	api, err := graphql.NewHandler(apiCfg)
	if err != nil {
		rec.Close(context.Background())
		return nil, err
	}
	return &stack{rec: rec, edge: edge, meter: m, api: api, log: c.log}, nil
}

// apiConfig is the API's configuration in serve and dev: the admin key,
// and the keys of the identity registry in the ledger's database, through
// a cache, with the registry behind the admin mutations.
// keys is the cache to resolve keys through (nil: a new one).
func apiConfig(store *ledger.Store, adminKey string, keys *identity.Cache, log *slog.Logger, rate float64, burst int) graphql.Config {
	ids := identity.NewRegistry(store.Pool())
	if keys == nil {
		keys = identity.NewCache(ids, identity.CacheConfig{})
	}
	return graphql.Config{Store: store, AdminKey: adminKey, Logger: log,
		Keys: keys, Registry: ids, RateLimit: rate, RateBurst: burst}
}

// run starts the stack's servers and workers in g. Edges that more
// callers start must be counted in st.edges before run is called.
func (st *stack) run(g *errgroup.Group, ctx context.Context, edgeSrv, apiSrv *server) {
	st.edges.Add(1)
	g.Go(func() error { defer st.edges.Done(); return serveEdge(ctx, edgeSrv, st.edge, st.rec) })
	g.Go(func() error { return st.runMeter(ctx) })
	g.Go(func() error { return apiSrv.serve(ctx) })
}

// drainTimeout bounds how long a stopping stack meters what its edges
// recorded last.
const drainTimeout = 15 * time.Second

// runMeter runs the meter until ctx ends, and then on until every edge of
// the process has stopped and the meter has metered what the log held by
// then (at most drainTimeout), so that a stack stopped and audited leaves
// no event recorded and unmetered. A meter that stops on its own returns
// at once.
func (st *stack) runMeter(ctx context.Context) error {
	mctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- st.meter.Run(mctx) }()
	edgesDone := make(chan struct{})
	go func() { <-ctx.Done(); st.edges.Wait(); close(edgesDone) }()
	select {
	case err := <-done:
		return err
	case <-edgesDone:
	}
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	err := st.meter.Drain(dctx)
	cancel()
	if err != nil {
		st.log.Warn("stopping with events not metered yet; the next start meters them", "err", err)
	}
	stop()
	return <-done
}

// runUntilDone runs fns until one fails or ctx ends, then waits for all.
func runUntilDone(ctx context.Context, fns ...func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, fn := range fns {
		g.Go(func() error { return fn(gctx) })
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// shutdownCtx bounds the time a component gets to finish after a stop.
func shutdownCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 20*time.Second)
}
