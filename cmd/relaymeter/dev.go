package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/relaymeter/relaymeter/graphql"
	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/internal/ethsim"
	"github.com/relaymeter/relaymeter/internal/pgserver"
)

func init() {
	register(command{name: "dev", summary: "run everything on this machine: Kafka, Postgres, edge, meter, API", run: runDev})
}

// devFlags are dev's flags; the names are a contract (ARCHITECTURE.md).
type devFlags struct {
	dataDir, httpAddr, wsListen, wsUpstream, service, supplier string
	maxHeadLag                                                 uint64
	adminKey, kafka, databaseURL, logLevel, forwarding         string
	kafkaListen                                                string
	demo, openAccess                                           bool
	demoClients                                                int
	apiRate                                                    float64
	apiBurst                                                   int
}

func runDev(ctx context.Context, args []string, sio stdio) error {
	var f devFlags
	var mf devMiningFlags
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	mf.register(fs)
	fs.StringVar(&f.dataDir, "data-dir", ".relaymeter", "where the embedded Kafka and Postgres keep their data")
	fs.StringVar(&f.httpAddr, "http", "127.0.0.1:8080", "GraphQL API, GraphiQL and /metrics listen address")
	fs.StringVar(&f.wsListen, "ws-listen", "127.0.0.1:8546", "WebSocket edge listen address")
	fs.StringVar(&f.wsUpstream, "ws-upstream", "", "WebSocket JSON-RPC upstream (default: a built-in simulated node), or several, comma-separated: a pool clients move within, subscriptions kept, when their upstream is lost or unhealthy")
	fs.Uint64Var(&f.maxHeadLag, "max-head-lag", 5, "with several upstreams: an upstream more than this many blocks behind the best one is unhealthy, and its clients move")
	fs.StringVar(&f.service, "service", "eth", "service the WebSocket edge meters")
	fs.StringVar(&f.supplier, "supplier", "local", "supplier (relay operator) the WebSocket edge records")
	fs.StringVar(&f.adminKey, "admin-key", "", "API admin key (default: made once and kept in the data dir)")
	fs.StringVar(&f.kafka, "kafka", "", "Kafka brokers, comma-separated (default: embedded)")
	fs.StringVar(&f.kafkaListen, "kafka-listen", defaultKafkaListen, "embedded Kafka listen address, which it also advertises to clients; port 0 picks a free one")
	fs.StringVar(&f.databaseURL, "database-url", "", "Postgres URL (default: a private server in the data dir)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.forwarding, "forwarding", "after-ack", "when the edge forwards a recorded message: after-ack or after-queue")
	fs.BoolVar(&f.demo, "demo", false, "run built-in clients that make traffic through the edge")
	fs.IntVar(&f.demoClients, "demo-clients", 3, "clients --demo runs")
	fs.Float64Var(&f.apiRate, "api-rate", graphql.DefaultRateLimit, "API requests per second each key may send on average (negative: no limit)")
	fs.IntVar(&f.apiBurst, "api-burst", graphql.DefaultRateBurst, "API requests each key may send at once")
	fs.BoolVar(&f.openAccess, "open-access", true, "UNAUTHENTICATED, for this machine only: the edge also accepts ws://HOST/<application> without a key, billing whatever application the path names (keys at ws://HOST/v1/<key> work either way; --open-access=false to require them)")
	var lf wsLimitFlags
	lf.register(fs)
	var cf chainFlags
	cf.register(fs, 5*time.Second, 4)
	fs.String("config", "", "YAML configuration file")
	fc, err := parseConfig(fs, args)
	if err != nil {
		return err
	}
	log, err := newLogger(sio.err, f.logLevel)
	if err != nil {
		return err
	}
	if err := mf.check(f.demo); err != nil {
		return err
	}
	forwarding, err := parseForwarding(f.forwarding)
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
	if limits, err = defaultLimits(fc.Services, f.service, limits); err != nil {
		return err
	}
	if err := os.MkdirAll(f.dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// Take the embedded Kafka's port first: a port in use fails here, before
	// Postgres starts.
	var kafkaLn net.Listener
	if f.kafka == "" {
		if kafkaLn, err = listenKafka(f.kafkaListen); err != nil {
			return err
		}
		defer kafkaLn.Close()
	} else if isSet(fs, "kafka-listen") {
		return errors.New("--kafka-listen is the embedded Kafka's address; with --kafka there is none")
	}

	if f.databaseURL == "" {
		pg, err := startDevPostgres(ctx, f.dataDir, log)
		if err != nil {
			return err
		}
		defer pg.Stop()
		f.databaseURL = pg.URL("relaymeter")
	}
	brokers := splitList(f.kafka)
	if len(brokers) == 0 {
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(oneListener(kafkaLn)), kfake.DataDir(filepath.Join(f.dataDir, "kafka")),
			kfake.SeedTopics(4, topicMessages, topicClaims), kfake.DefaultNumPartitions(4), kfake.AllowAutoTopicCreation())
		if err != nil {
			return fmt.Errorf("embedded kafka: %w", err)
		}
		defer kc.Close()
		brokers = kc.ListenAddrs()
	}
	services := fc.Services
	if !hasService(services, f.service) {
		services = append(services, serviceConfig{ID: f.service, Protocol: "WEBSOCKET_JSONRPC"})
	}
	services = devMiningServices(services, mf)
	services = devTariffs(services, fc.Services)
	store, err := openStore(ctx, f.databaseURL, true, services)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	key, err := adminKey(f.adminKey, f.dataDir)
	if err != nil {
		return err
	}
	ids := identity.NewRegistry(store.Pool())
	demoKey, err := devDemoKey(ctx, ids, f.dataDir)
	if err != nil {
		return err
	}
	reg := newRegistry()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	if f.wsUpstream == "" {
		node := ethsim.New(ethsim.Config{Logger: log})
		up, err := listen("simulated node", "127.0.0.1:0", node)
		if err != nil {
			return err
		}
		g.Go(func() error { node.Run(gctx); return nil })
		g.Go(func() error { return up.serve(gctx) })
		f.wsUpstream = "ws://" + up.addr() + "/"
		log.Info("dev: built-in simulated node as the WebSocket upstream", "url", f.wsUpstream)
	}

	ch, sc, err := cf.build(ctx)
	if err != nil {
		return err
	}
	keys := identity.NewCache(ids, identity.CacheConfig{})
	st, err := newStack(stackConfig{
		chain: ch, settlement: sc,
		brokers: brokers, store: store, reg: reg, log: log, adminKey: key,
		edgeID: "dev", wsUpstream: f.wsUpstream, maxHeadLag: f.maxHeadLag, service: f.service, wsRoutes: routes, supplier: f.supplier, forwarding: forwarding,
		spoolDir: filepath.Join(f.dataDir, "spool"), apiRate: f.apiRate, apiBurst: f.apiBurst,
		keys: keys, openAccess: f.openAccess,
		capture: defaultCapture(fc.Services, f.service, 1024, log), wsLimits: limits, trustedProxies: trusted,
	})
	if err != nil {
		return err
	}
	edgeSrv, err := listen("ws edge", f.wsListen, st.edge)
	if err != nil {
		return err
	}
	apiSrv, err := listen("api", f.httpAddr, apiMux(st.api, reg))
	if err != nil {
		return err
	}
	mining := &devMining{f: mf, demo: f.demo, dataDir: f.dataDir, brokers: brokers, supplier: f.supplier,
		openAccess: f.openAccess, keys: keys, ids: ids, demoKey: demoKey, reg: reg, log: log, edges: &st.edges}
	miningLines, err := mining.start(g, gctx) // before run: its edges count in st.edges
	st.run(g, gctx, edgeSrv, apiSrv)
	if err != nil {
		cancel() // stop what already runs before returning
		_ = g.Wait()
		return err
	}
	if f.demo {
		// The demo clients present the demo key, as an application would:
		// their traffic bills the demo application whether or not open
		// access is on.
		url := "ws://" + edgeSrv.addr() + "/v1/" + demoKey
		for range f.demoClients {
			g.Go(func() error { demoClient(gctx, url, demoKey, log); return nil })
		}
	}

	fmt.Fprintf(sio.out, "relaymeter dev\n")
	fmt.Fprintf(sio.out, "  GraphiQL   http://%s/\n", apiSrv.addr())
	fmt.Fprintf(sio.out, "  sign in    http://%s/#key=%s\n", apiSrv.addr(), key)
	fmt.Fprintf(sio.out, "  GraphQL    http://%s/graphql  (Authorization: Bearer %s)\n", apiSrv.addr(), key)
	fmt.Fprintf(sio.out, "  metrics    http://%s/metrics\n", apiSrv.addr())
	fmt.Fprintf(sio.out, "  ws edge    ws://%s/<application>  → %s\n", edgeSrv.addr(), redactURLs(f.wsUpstream))
	for _, id := range slices.Sorted(maps.Keys(routes)) {
		fmt.Fprintf(sio.out, "  ws edge    ws://%s/%s/<application>  → %s\n", edgeSrv.addr(), id, redactURLs(routes[id].Upstream))
	}
	for _, l := range miningLines {
		fmt.Fprintln(sio.out, l)
	}
	// These two lines, as the issue pinned them, are read by scripts
	// (bench/ws-vs-nginx.sh): `kafka   HOST:PORT`, `postgres URL`.
	fmt.Fprintf(sio.out, "kafka   %s\n", strings.Join(brokers, ","))
	fmt.Fprintf(sio.out, "postgres %s\n", redactPassword(f.databaseURL))
	fmt.Fprintf(sio.out, "  admin key  %s\n", key)
	fmt.Fprintf(sio.out, "  demo key   %s\n", demoKey)
	fmt.Fprintf(sio.out, "  demo url   ws://%s/v1/%s\n", edgeSrv.addr(), demoKey)
	if f.openAccess {
		fmt.Fprintf(sio.out, "  open access on: ws://%s/<application> bills any application unchecked (--open-access=false to require keys)\n", edgeSrv.addr())
	}
	fmt.Fprintf(sio.out, "  sessions   %s: %s blocks, %d per session, settled %d block(s) after their end\n",
		cf.source, cf.blockTime, cf.sessionBlocks, cf.graceBlocks)
	fmt.Fprintf(sio.out, "  data       %s\n", f.dataDir)

	err = g.Wait()
	if errors.Is(err, context.Canceled) || errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// devDemoApplication names the application dev makes for its demo key.
const devDemoApplication = "demo"

// devDemoKey returns the secret of dev's demo application key, kept in dir
// (demo-key). The first run, or a run whose kept key the registry no
// longer knows (another database) or has revoked, makes the "demo"
// application if there is none and a key for it.
func devDemoKey(ctx context.Context, ids *identity.Registry, dir string) (string, error) {
	path := filepath.Join(dir, "demo-key")
	if b, err := os.ReadFile(path); err == nil {
		secret := strings.TrimSpace(string(b))
		p, err := ids.Resolve(ctx, secret)
		var re *identity.RefusedError
		switch {
		case err == nil && p.Role == identity.RoleApplication:
			return secret, nil
		case errors.As(err, &re) && re.Reason == "application disabled":
			return secret, nil // disabled on purpose: a new key would not work either
		case err != nil && !errors.Is(err, identity.ErrRefused):
			return "", fmt.Errorf("demo key: %w", err)
		}
	}
	apps, err := ids.Applications(ctx)
	if err != nil {
		return "", fmt.Errorf("demo key: %w", err)
	}
	var app identity.Application
	for _, a := range apps {
		if a.Name == devDemoApplication {
			app = a
			break
		}
	}
	if app.ID == "" {
		if app, err = ids.CreateApplication(ctx, devDemoApplication); err != nil {
			return "", fmt.Errorf("demo key: %w", err)
		}
	}
	secret, _, err := ids.CreateKey(ctx, identity.NewKey{Role: identity.RoleApplication, Application: app.ID, Name: "dev demo"})
	if err != nil {
		return "", fmt.Errorf("demo key: %w", err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("demo key: %w", err)
	}
	return secret, nil
}

// defaultKafkaListen is where dev's embedded Kafka listens unless told
// otherwise: the port Kafka tools try first.
const defaultKafkaListen = "127.0.0.1:9092"

// listenKafka opens the embedded Kafka's listener on addr. kfake advertises
// the listener's own address to clients, so addr must be one they can
// connect to: a wildcard host is refused rather than advertised.
func listenKafka(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--kafka-listen %q: want host:port: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return nil, fmt.Errorf("--kafka-listen %s: name an address clients can connect to, such as 127.0.0.1:9092 or this machine's IP: the embedded Kafka advertises its listen address to its clients", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("embedded kafka: %s is already in use (another Kafka, or another relaymeter dev?): pass --kafka-listen 127.0.0.1:0 to pick a free port, or --kafka to use the Kafka that runs there: %w", addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: --kafka-listen %s: %w", addr, err)
	}
	return ln, nil
}

// oneListener is a kfake.ListenFn that hands out ln to the one broker,
// whatever address kfake asks for (it only knows how to ask for 127.0.0.1).
func oneListener(ln net.Listener) func(network, address string) (net.Listener, error) {
	var once sync.Once
	return func(network, address string) (net.Listener, error) {
		var got net.Listener
		once.Do(func() { got = ln })
		if got == nil {
			return nil, errors.New("embedded kafka: one broker only")
		}
		return got, nil
	}
}

// isSet reports whether flag name was given on the command line, in the
// environment or in the config file.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// redactPassword hides the password of a Postgres URL or keyword/value
// connection string, for display.
func redactPassword(s string) string {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		changed := false
		if _, ok := u.User.Password(); ok {
			u.User, changed = url.UserPassword(u.User.Username(), "REDACTED"), true
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "REDACTED")
			u.RawQuery, changed = q.Encode(), true
		}
		if changed {
			return u.String()
		}
		return s
	}
	return dsnPassword.ReplaceAllString(s, "${1}REDACTED")
}

var dsnPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

func hasService(ss []serviceConfig, id string) bool {
	for _, s := range ss {
		if s.ID == id {
			return true
		}
	}
	return false
}

// startDevPostgres starts the private, durable Postgres of a dev data dir.
// Run as root from a directory the postgres user cannot reach (such as
// under /root), the cluster lives under /var/lib/relaymeter instead.
func startDevPostgres(ctx context.Context, dataDir string, log *slog.Logger) (*pgserver.Server, error) {
	dir := filepath.Join(dataDir, "postgres")
	var unreachable *pgserver.UnreachableError
	if err := pgserver.Reachable(dir); errors.As(err, &unreachable) {
		abs, _ := filepath.Abs(dataDir)
		h := fnv.New32a()
		h.Write([]byte(abs))
		alt := filepath.Join("/var/lib/relaymeter", fmt.Sprintf("%08x", h.Sum32()), "postgres")
		log.Warn("dev: the postgres user cannot reach the data dir; keeping Postgres elsewhere", "reason", err.Error(), "postgres_dir", alt)
		if err := os.MkdirAll(filepath.Dir(alt), 0o755); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		dir = alt
	} else if err != nil {
		return nil, err
	}
	start := time.Now()
	pg, err := pgserver.Start(ctx, pgserver.Options{DataDir: dir, Durable: true})
	if err != nil {
		return nil, err
	}
	if err := pg.CreateDatabase(ctx, "relaymeter"); err != nil {
		pg.Stop()
		return nil, err
	}
	log.Info("dev: postgres ready", "dir", dir, "took", time.Since(start).Round(time.Millisecond))
	return pg, nil
}

// demoClient makes steady traffic through the edge as an application
// would: a newHeads subscription and a call every 700 ms, reconnecting
// until ctx ends. secret, the key in url, is never logged.
func demoClient(ctx context.Context, url, secret string, log *slog.Logger) {
	for ctx.Err() == nil {
		c, err := ethsim.Dial(ctx, url)
		if err != nil {
			log.Debug("demo: dial", "url", strings.ReplaceAll(url, secret, "<demo key>"),
				"err", strings.ReplaceAll(err.Error(), secret, "<demo key>"))
			sleep(ctx, 2*time.Second)
			continue
		}
		if _, heads, err := c.Subscribe(ctx, "newHeads"); err == nil {
			go func() {
				for range heads {
				}
			}()
		}
		tick := time.NewTicker(700 * time.Millisecond)
		for i := 0; ctx.Err() == nil; i++ {
			method := "eth_blockNumber"
			if i%7 == 0 {
				method = "eth_chainId"
			}
			if _, err := c.Call(ctx, method); err != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
		tick.Stop()
		c.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// devTariffs gives each built-in service (one the YAML file does not
// declare) a demo tariff of 1 upokt per unit, so that balances move in dev;
// a service the file declares is priced as the file says.
func devTariffs(services, declared []serviceConfig) []serviceConfig {
	out := slices.Clone(services)
	for i := range out {
		if !hasService(declared, out[i].ID) && len(out[i].Tariffs) == 0 {
			out[i].Tariffs = []tariffConfig{{PricePerUnit: "1", Currency: "upokt"}}
		}
	}
	return out
}
