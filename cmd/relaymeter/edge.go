package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/ingest/ws"
)

// defaultSpoolDir is edge ws's spool directory unless --spool-dir says
// otherwise: under the working directory, like dev's data dir.
const defaultSpoolDir = ".relaymeter/spool"

func init() {
	register(command{name: "edge", summary: "run an edge proxy: edge ws (WebSocket JSON-RPC), or another kind this build has", run: runEdge})
	registerEdge("ws", runEdgeWS)
}

// edgeKinds are the edges of this build by kind (the word after "edge"),
// each registered by its own file.
var edgeKinds = map[string]func(ctx context.Context, args []string, sio stdio) error{}

func registerEdge(kind string, run func(ctx context.Context, args []string, sio stdio) error) {
	edgeKinds[kind] = run
}

func runEdge(ctx context.Context, args []string, sio stdio) error {
	if len(args) > 0 {
		if run, ok := edgeKinds[args[0]]; ok {
			return run(ctx, args[1:], sio)
		}
	}
	kinds := slices.Sorted(maps.Keys(edgeKinds))
	fmt.Fprintf(sio.err, "usage: relaymeter edge %s [flags]\n", strings.Join(kinds, "|"))
	return errUsage
}

// runEdgeWS runs the WebSocket JSON-RPC edge.
func runEdgeWS(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("edge ws", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	listenAddr := fs.String("listen", "127.0.0.1:8546", "listen address; clients connect to ws://HOST/v1/<key>, or to ws://HOST/ with Authorization: Bearer <key>, an application's API key")
	databaseURL := fs.String("database-url", "", "Postgres URL of the identity registry the edge resolves API keys in (required unless --open-access)")
	keyCacheTTL := fs.Duration("key-cache-ttl", identity.DefaultTTL, "how long a key's answer is trusted before the registry is asked again: a revoked key keeps opening streams this long")
	openAccess := fs.Bool("open-access", false, "UNAUTHENTICATED, trusted deployments only: also accept ws://HOST/<application> without a key, billing whatever application the path names; keys still work")
	upstream := fs.String("upstream", "", "WebSocket JSON-RPC upstream URL of --service, served at the root (required), or several, comma-separated: a pool clients move within, subscriptions kept, when their upstream is lost or unhealthy; a WEBSOCKET_JSONRPC service with an upstream: in --config is served at ws://HOST/<service>/v1/<key>")
	maxHeadLag := fs.Uint64("max-head-lag", 5, "with several upstreams: an upstream whose eth_blockNumber is more than this many blocks behind the best one is unhealthy, and its clients move")
	healthInterval := fs.Duration("health-interval", 2*time.Second, "with several upstreams: how often each is asked eth_blockNumber on a connection of the edge's own")
	healthTimeout := fs.Duration("health-timeout", 5*time.Second, "with several upstreams: an upstream that does not answer a health check within this is unhealthy")
	maxSubs := fs.Int("max-subscriptions", 100, "the most subscriptions a connection holds, open and being opened; an eth_subscribe beyond it is answered -32005 by the edge")
	service := fs.String("service", "eth", "service this edge meters")
	supplier := fs.String("supplier", "", "supplier (relay operator) recorded in each stream (required)")
	kafka := fs.String("kafka", "", "Kafka brokers, comma-separated (required)")
	edgeID := fs.String("edge-id", "", "this edge's id in every event (default: the host name)")
	capture := fs.Int64("payload-capture", 1024, "payload bytes captured per message: -1 whole, 0 none, N the first N")
	maxMsg := fs.Int64("max-message-size", 1<<20, "largest WebSocket message; larger ones close with 1009")
	queueBytes := fs.Int64("queue-bytes", 4<<20, "per connection and direction, the most bytes of messages read and not yet written to the other side; a full queue stops reading that side")
	bufferBytes := fs.Int64("buffer-bytes", 256<<20, "the most bytes of message buffers of all connections together; a reader that waits more than twice --write-timeout for room closes its client with 1013")
	writeTimeout := fs.Duration("write-timeout", 10*time.Second, "a side that does not take a message within this ends the connection (a client with 1008, client not reading)")
	forwarding := fs.String("forwarding", "after-ack", "forward a message after Kafka acknowledged its event (after-ack: nothing crosses unrecorded) or once it is queued (after-queue: lower latency)")
	linger := fs.Duration("batch-linger", 0, "how long an idle recorder partition waits to fill a batch before sending (0: send at once; events arriving meanwhile form the next batch)")
	spoolDir := fs.String("spool-dir", defaultSpoolDir, "local directory where events go, fsynced, while Kafka cannot take them; they count as recorded and are sent in order once Kafka is back (one edge per directory; \"\" disables it, and the edge then holds clients back while Kafka is down)")
	spoolMax := fs.Int64("spool-max-bytes", 1<<30, "spool size cap in bytes; beyond it the edge holds clients back until the spool drains")
	metricsAddr := fs.String("http", "", "serve /metrics here (default: not served)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the edge to this file until it stops")
	var lf wsLimitFlags
	lf.register(fs)
	fs.String("config", "", "YAML configuration file")
	fc, err := parseConfig(fs, args)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	log, err := newLogger(sio.err, *logLevel)
	if err != nil {
		return err
	}
	limits, trusted, err := lf.limits()
	if err != nil {
		return err
	}
	routes, err := wsRoutes(fc.Services, limits, log)
	if err != nil {
		return err
	}
	if limits, err = defaultLimits(fc.Services, *service, limits); err != nil {
		return err
	}
	switch {
	case *upstream == "":
		return fmt.Errorf("--upstream is required")
	case *supplier == "":
		return fmt.Errorf("--supplier is required")
	case *kafka == "":
		return fmt.Errorf("--kafka is required")
	case *databaseURL == "" && !*openAccess:
		return fmt.Errorf("--database-url is required to resolve API keys (or --open-access, for trusted deployments)")
	case *keyCacheTTL <= 0:
		return fmt.Errorf("--key-cache-ttl %v: want a positive duration", *keyCacheTTL)
	}
	mode, err := parseForwarding(*forwarding)
	if err != nil {
		return err
	}
	if *edgeID == "" {
		*edgeID, _ = os.Hostname()
	}
	var keys ws.Keys
	if *databaseURL != "" {
		pool, err := openKeyRegistry(ctx, *databaseURL, log)
		if err != nil {
			return err
		}
		defer pool.Close()
		keys = identity.NewCache(identity.NewRegistry(pool), identity.CacheConfig{TTL: *keyCacheTTL})
	}
	if *openAccess {
		log.Warn("edge ws: --open-access: clients without a key bill the application their path names, unchecked; run it only where every client is trusted")
	}
	reg := newRegistry()
	rec, err := record.New(record.Config{Brokers: splitList(*kafka), Topic: topicMessages, EdgeID: *edgeID,
		SpoolDir: *spoolDir, SpoolMaxBytes: *spoolMax, BatchLinger: *linger, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	edge, err := ws.New(ws.Config{
		Recorder: rec, Upstream: *upstream, Service: *service, Services: routes, Supplier: *supplier,
		MaxMessageSize: *maxMsg, QueueBytes: *queueBytes, BufferBytes: *bufferBytes, WriteTimeout: *writeTimeout,
		PayloadCapture: defaultCapture(fc.Services, *service, *capture, log), Forwarding: mode, Logger: log, Registerer: reg,
		Keys: keys, OpenAccess: *openAccess, Limits: limits, TrustedProxies: trusted,
		MaxHeadLag: *maxHeadLag, HealthInterval: *healthInterval, HealthTimeout: *healthTimeout, MaxSubscriptions: *maxSubs,
	})
	if err != nil {
		rec.Close(context.Background())
		return err
	}
	srv, err := listen("ws edge", *listenAddr, edge)
	if err != nil {
		rec.Close(context.Background())
		return err
	}
	log.Info("edge ws: listening", "addr", srv.addr(), "upstream", redactURLs(*upstream), "service", *service,
		"routes", describeRoutes(routes), "keys", keys != nil, "open_access", *openAccess)
	fns := []func(context.Context) error{func(ctx context.Context) error { return serveEdge(ctx, srv, edge, rec) }}
	if *metricsAddr != "" {
		ms, err := listen("metrics", *metricsAddr, apiMux(nil, reg))
		if err != nil {
			return err
		}
		fns = append(fns, ms.serve)
	}
	return runUntilDone(ctx, fns...)
}

// openKeyRegistry connects to the Postgres of the identity registry. An
// unreachable server is not fatal: keys resolve once it answers, and until
// then clients get 503.
func openKeyRegistry(ctx context.Context, url string, log *slog.Logger) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("--database-url: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		log.Warn("edge ws: the key registry is unreachable for now; clients get 503 until it answers", "err", err)
	}
	return pool, nil
}

// serveEdge serves an edge until ctx ends, then closes its connections
// (recording each stream's close) and flushes the recorder.
func serveEdge(ctx context.Context, srv *server, edge *ws.Edge, rec *record.Recorder) error {
	err := srv.serve(ctx)
	sctx, cancel := shutdownCtx()
	defer cancel()
	if cerr := edge.Close(sctx); cerr != nil && err == nil {
		err = cerr
	}
	if cerr := rec.Close(sctx); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// redactURLs is redactURL of each of a comma-separated list of URLs.
func redactURLs(s string) string {
	var out []string
	for u := range strings.SplitSeq(s, ",") {
		out = append(out, redactURL(strings.TrimSpace(u)))
	}
	return strings.Join(out, ",")
}

// redactURL keeps only a URL's scheme and host for display: credentials
// hide in userinfo, the path (Infura, Alchemy) and the query.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

func parseForwarding(s string) (ws.Forwarding, error) {
	switch s {
	case "after-ack":
		return ws.ForwardAfterAck, nil
	case "after-queue":
		return ws.ForwardAfterQueue, nil
	}
	return 0, fmt.Errorf("--forwarding %q: want after-ack or after-queue", s)
}

// tcpEdge is a mining edge: it serves miners on a listener until closed.
type tcpEdge interface {
	Serve(ln net.Listener) error
	Close(ctx context.Context) error
}

// serveTCPEdge serves edge on ln until ctx ends, then closes its
// connections (recording each stream's close) and flushes the recorder.
func serveTCPEdge(ctx context.Context, ln net.Listener, edge tcpEdge, rec *record.Recorder) error {
	errc := make(chan error, 1)
	go func() { errc <- edge.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	_ = ln.Close()
	sctx, cancel := shutdownCtx()
	defer cancel()
	if cerr := edge.Close(sctx); cerr != nil && err == nil {
		err = cerr
	}
	if cerr := rec.Close(sctx); cerr != nil && err == nil {
		err = cerr
	}
	return err
}
