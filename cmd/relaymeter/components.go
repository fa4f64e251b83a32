package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/relaymeter/relaymeter/graphql"
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
	forwarding                    ws.Forwarding
	spoolDir                      string  // the recorder's spool ("": none)
	keys                          ws.Keys // resolves the edge's API keys (nil: none)
	openAccess                    bool    // the edge also takes ws://HOST/<application>
}

// stack is every component of relaymeter in one process.
type stack struct {
	rec   *record.Recorder
	edge  *ws.Edge
	meter *meter.Meter
	api   http.Handler
}

func newStack(c stackConfig) (*stack, error) {
	rec, err := record.New(record.Config{Brokers: c.brokers, Topic: topicMessages, EdgeID: c.edgeID, SpoolDir: c.spoolDir, Logger: c.log, Registerer: c.reg})
	if err != nil {
		return nil, err
	}
	edge, err := ws.New(ws.Config{Recorder: rec, Upstream: c.wsUpstream, Service: c.service, Supplier: c.supplier,
		PayloadCapture: 1024, Forwarding: c.forwarding, Keys: c.keys, OpenAccess: c.openAccess, Logger: c.log, Registerer: c.reg})
	if err != nil {
		rec.Close(context.Background())
		return nil, err
	}
	m, err := meter.New(meter.Config{Brokers: c.brokers, Topic: topicMessages, Store: c.store, Logger: c.log, Registerer: c.reg})
	if err != nil {
		rec.Close(context.Background())
		return nil, err
	}
	api, err := graphql.NewHandler(graphql.Config{Store: c.store, AdminKey: c.adminKey, Logger: c.log})
	if err != nil {
		rec.Close(context.Background())
		return nil, err
	}
	return &stack{rec: rec, edge: edge, meter: m, api: api}, nil
}

// run starts the stack's servers and workers in g.
func (st *stack) run(g *errgroup.Group, ctx context.Context, edgeSrv, apiSrv *server) {
	g.Go(func() error { return serveEdge(ctx, edgeSrv, st.edge, st.rec) })
	g.Go(func() error { return st.meter.Run(ctx) })
	g.Go(func() error { return apiSrv.serve(ctx) })
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
