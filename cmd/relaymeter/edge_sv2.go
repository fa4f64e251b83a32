package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/record"
	edgesv2 "github.com/relaymeter/relaymeter/ingest/sv2"
	"github.com/relaymeter/relaymeter/stratum/sv2/noise"
)

func init() {
	registerEdge("sv2", runEdgeSv2)
}

// runEdgeSv2 runs the Stratum V2 edge.
func runEdgeSv2(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("edge sv2", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	listenAddr := fs.String("listen", "127.0.0.1:34255", "listen address miners connect to")
	upstream := fs.String("upstream", "", "the pool's host:port (required)")
	service := fs.String("service", "sv2", "service this edge meters (a STRATUM_V2 service)")
	supplier := fs.String("supplier", "", "supplier (pool operator) recorded in each stream (required)")
	kafka := fs.String("kafka", "", "Kafka brokers, comma-separated (required)")
	edgeID := fs.String("edge-id", "", "this edge's id in every event (default: the host name)")
	databaseURL := fs.String("database-url", "", "Postgres URL of the identity registry the account of each channel's user_identity is resolved in (required unless --open-access)")
	openAccess := fs.Bool("open-access", false, "bill an account the registry does not know (every account, without --database-url) to an application of the same name, unchecked")
	authorityKeyFile := fs.String("authority-key-file", "", "file holding the hex secret key of the authority that signs the edge's Noise certificate; miners pin its public key (required unless --plaintext-downstream)")
	certValidity := fs.Duration("cert-validity", 30*24*time.Hour, "validity of the edge's Noise certificates; a new one serves new connections once half of it has passed")
	upstreamAuthority := fs.String("upstream-authority-pubkey", "", "base58check authority public key the pool's Noise certificate must be signed by (required unless --plaintext-upstream)")
	plainDown := fs.Bool("plaintext-downstream", false, "accept miners without Noise")
	plainUp := fs.Bool("plaintext-upstream", false, "connect to the pool without Noise")
	maxPayload := fs.Int("max-frame-payload", 1<<20, "largest frame payload accepted from either side; a larger one closes the connection")
	handshakeTimeout := fs.Duration("handshake-timeout", edgesv2.DefaultHandshakeTimeout, "the Noise handshake and the miner's SetupConnection must complete within this")
	idleTimeout := fs.Duration("idle-timeout", edgesv2.DefaultIdleTimeout, "a connection with no frame in either direction for this long is closed")
	reconnect := fs.String("reconnect", string(edgesv2.ReconnectRewrite), "what to do with a pool's Reconnect: \"rewrite\" keeps miners behind the edge (the miner is sent back to --advertise and its next connections, during --reconnect-ttl, go where the pool asked), \"pass\" forwards it unchanged (miners leave the edge)")
	advertise := fs.String("advertise", "", "HOST:PORT a rewritten Reconnect sends miners to (default: new_host \"\" and new_port 0, which Stratum V2 defines as the address the miner is connected to, i.e. this edge as the miner reached it)")
	reconnectTTL := fs.Duration("reconnect-ttl", edgesv2.DefaultReconnectTTL, "how long a pool's Reconnect redirects the miner's connections (keyed by the miner's IP and SetupConnection device_id)")
	jdUpstream := fs.String("job-declaration-upstream", "", "host:port Job Declaration connections are passed through to (default: --upstream)")
	tdUpstream := fs.String("template-distribution-upstream", "", "host:port Template Distribution connections are passed through to (default: --upstream)")
	passthroughApp := fs.String("passthrough-application", "", "application billed for Job Declaration and Template Distribution connections, which name no account (default: none, streams with no application)")
	accountTTL := fs.Duration("account-cache-ttl", identity.DefaultTTL, "how long an account's resolution is trusted before the registry is asked again")
	spoolDir := fs.String("spool-dir", ".relaymeter/spool-sv2", "local directory where events go, fsynced, while Kafka cannot take them (one edge per directory; \"\" disables it)")
	spoolMax := fs.Int64("spool-max-bytes", 1<<30, "spool size cap in bytes")
	metricsAddr := fs.String("http", "", "serve /metrics here (default: not served)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.String("config", "", "YAML configuration file")
	fc, err := parseConfig(fs, args)
	if err != nil {
		return err
	}
	if len(fc.args) != 0 {
		return fmt.Errorf("edge sv2: unexpected arguments %q", fc.args)
	}
	log, err := newLogger(sio.err, *logLevel)
	if err != nil {
		return err
	}
	switch {
	case *upstream == "":
		return errors.New("--upstream is required")
	case *supplier == "":
		return errors.New("--supplier is required")
	case *kafka == "":
		return errors.New("--kafka is required")
	case *databaseURL == "" && !*openAccess:
		return errors.New("--database-url is required to resolve accounts (or --open-access, for trusted deployments)")
	case *authorityKeyFile == "" && !*plainDown:
		return errors.New("--authority-key-file is required (or --plaintext-downstream)")
	case *upstreamAuthority == "" && !*plainUp:
		return errors.New("--upstream-authority-pubkey is required (or --plaintext-upstream)")
	case *certValidity <= 0:
		return fmt.Errorf("--cert-validity %v: want a positive duration", *certValidity)
	case *reconnect != string(edgesv2.ReconnectRewrite) && *reconnect != string(edgesv2.ReconnectPass):
		return fmt.Errorf("--reconnect %q: want rewrite or pass", *reconnect)
	case *advertise != "" && !validHostPort(*advertise):
		return fmt.Errorf("--advertise %q: want HOST:PORT", *advertise)
	case *reconnectTTL <= 0:
		return fmt.Errorf("--reconnect-ttl %v: want a positive duration", *reconnectTTL)
	}
	if *edgeID == "" {
		*edgeID, _ = os.Hostname()
	}
	cfg := edgesv2.Config{Upstream: *upstream, Service: *service, Supplier: *supplier, OpenAccess: *openAccess,
		MaxPayload: *maxPayload, HandshakeTimeout: *handshakeTimeout, IdleTimeout: *idleTimeout, Logger: log,
		Reconnect: edgesv2.ReconnectMode(*reconnect), Advertise: *advertise, ReconnectTTL: *reconnectTTL,
		JobDeclarationUpstream: *jdUpstream, TemplateDistributionUpstream: *tdUpstream, PassthroughApplication: *passthroughApp}
	var authority *noise.PrivateKey
	if !*plainDown {
		if authority, err = readAuthorityKey(*authorityKeyFile); err != nil {
			return err
		}
		log.Info("edge sv2: miners must pin this authority public key", "authority", authority.PublicKey().String(),
			"cert_validity", *certValidity)
	}
	upstreamKey := *upstreamAuthority
	if *plainUp {
		upstreamKey = ""
	}
	if err := sv2EdgeNoise(&cfg, authority, *certValidity, upstreamKey); err != nil {
		return err
	}
	if *databaseURL != "" {
		pool, err := openKeyRegistry(ctx, *databaseURL, log)
		if err != nil {
			return err
		}
		defer pool.Close()
		cfg.Accounts = newRegistryAccounts(identity.NewRegistry(pool), *accountTTL)
	}
	if *openAccess {
		log.Warn("edge sv2: --open-access: accounts the registry does not know bill an application of their own name, unchecked")
	}
	reg := newRegistry()
	edge, rec, err := newSv2Edge(cfg, record.Config{Brokers: splitList(*kafka), Topic: topicMessages, EdgeID: *edgeID,
		SpoolDir: *spoolDir, SpoolMaxBytes: *spoolMax, Logger: log, Registerer: reg}, reg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listenAddr)
	if err != nil {
		rec.Close(context.Background())
		return fmt.Errorf("sv2 edge: listen %s: %w", *listenAddr, err)
	}
	log.Info("edge sv2: listening", "addr", ln.Addr().String(), "upstream", *upstream, "service", *service,
		"noise_downstream", !*plainDown, "noise_upstream", !*plainUp, "open_access", *openAccess)
	log.Info("edge sv2: pool Reconnects", "mode", *reconnect, "advertise", *advertise, "ttl", *reconnectTTL)
	fns := []func(context.Context) error{func(ctx context.Context) error { return serveTCPEdge(ctx, ln, edge, rec) }}
	if *metricsAddr != "" {
		ms, err := listen("metrics", *metricsAddr, apiMux(nil, reg))
		if err != nil {
			return err
		}
		fns = append(fns, ms.serve)
	}
	return runUntilDone(ctx, fns...)
}

// sv2EdgeNoise sets cfg's Noise toward miners, certificates of validity
// signed by authority (nil: plaintext), and toward the pool, whose
// certificate must be signed by the base58check upstreamAuthority ("":
// plaintext). edge sv2 and dev build the edge this way.
func sv2EdgeNoise(cfg *edgesv2.Config, authority *noise.PrivateKey, validity time.Duration, upstreamAuthority string) error {
	if authority != nil {
		certs, err := newCertRenewer(authority, validity, time.Now)
		if err != nil {
			return err
		}
		cfg.Downstream = certs.config
	}
	if upstreamAuthority != "" {
		key, err := noise.ParsePublicKey(upstreamAuthority)
		if err != nil {
			return fmt.Errorf("--upstream-authority-pubkey: %w", err)
		}
		cfg.UpstreamNoise = &noise.Config{AuthorityKey: key}
	}
	return nil
}

// newSv2Edge makes an Sv2 edge of cfg recording through a new recorder of
// rc, its metrics on reg: edge sv2 and dev build the edge this way.
func newSv2Edge(cfg edgesv2.Config, rc record.Config, reg prometheus.Registerer) (*edgesv2.Edge, *record.Recorder, error) {
	rec, err := record.New(rc)
	if err != nil {
		return nil, nil, err
	}
	cfg.Recorder, cfg.Registerer = rec, reg
	edge, err := edgesv2.New(cfg)
	if err != nil {
		rec.Close(context.Background())
		return nil, nil, err
	}
	return edge, rec, nil
}

// readAuthorityKey reads a hex secret key from path.
func readAuthorityKey(path string) (*noise.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--authority-key-file: %w", err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("--authority-key-file %s: want a hex secret key: %w", path, err)
	}
	key, err := noise.NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("--authority-key-file %s: %w", path, err)
	}
	return key, nil
}

// certRenewer is the edge's Noise identity toward miners: a static key
// made at start and a certificate for it from the authority, valid for
// validity and reissued for new connections once half of it has passed.
type certRenewer struct {
	authority, static *noise.PrivateKey
	validity          time.Duration
	now               func() time.Time

	mu      sync.Mutex
	cfg     *noise.Config
	renewAt time.Time
}

func newCertRenewer(authority *noise.PrivateKey, validity time.Duration, now func() time.Time) (*certRenewer, error) {
	static, err := noise.GeneratePrivateKey()
	if err != nil {
		return nil, fmt.Errorf("edge static key: %w", err)
	}
	r := &certRenewer{authority: authority, static: static, validity: validity, now: now}
	if err := r.issue(now()); err != nil {
		return nil, err
	}
	return r, nil
}

// issue makes a certificate valid from a minute before now. Called with mu
// held, or before r is shared.
func (r *certRenewer) issue(now time.Time) error {
	cert, err := noise.IssueCertificate(r.authority, r.static.PublicKey(), now.Add(-time.Minute), now.Add(r.validity))
	if err != nil {
		return fmt.Errorf("edge certificate: %w", err)
	}
	r.cfg = &noise.Config{StaticKey: r.static, Certificate: &cert}
	r.renewAt = now.Add(r.validity / 2)
	return nil
}

// config returns the responder configuration for a new connection.
func (r *certRenewer) config() *noise.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); !now.Before(r.renewAt) {
		// On failure the current certificate serves until the next try.
		_ = r.issue(now)
	}
	return r.cfg
}

// registryAccounts resolves Sv2 accounts in the identity registry: an
// account is an application's id or, failing that, its name; a disabled
// application is not found. Answers are cached for ttl.
type registryAccounts struct {
	reg *identity.Registry
	ttl time.Duration

	mu    sync.Mutex
	cache map[string]accountAnswer
}

type accountAnswer struct {
	id  string
	ok  bool
	exp time.Time
}

func newRegistryAccounts(reg *identity.Registry, ttl time.Duration) *registryAccounts {
	return &registryAccounts{reg: reg, ttl: ttl, cache: map[string]accountAnswer{}}
}

// maxCachedAccounts bounds the cache; beyond it the cache is reset.
const maxCachedAccounts = 1 << 16

// Application returns the id of the application account names.
func (a *registryAccounts) Application(ctx context.Context, account string) (string, bool, error) {
	a.mu.Lock()
	ans, hit := a.cache[account]
	a.mu.Unlock()
	if hit && time.Now().Before(ans.exp) {
		return ans.id, ans.ok, nil
	}
	id, ok, err := a.lookup(ctx, account)
	if err != nil {
		return "", false, err
	}
	a.mu.Lock()
	if len(a.cache) >= maxCachedAccounts {
		clear(a.cache)
	}
	a.cache[account] = accountAnswer{id: id, ok: ok, exp: time.Now().Add(a.ttl)}
	a.mu.Unlock()
	return id, ok, nil
}

func (a *registryAccounts) lookup(ctx context.Context, account string) (string, bool, error) {
	app, err := a.reg.Application(ctx, account)
	switch {
	case err == nil:
		return app.ID, !app.Disabled, nil
	case !errors.Is(err, identity.ErrNotFound):
		return "", false, fmt.Errorf("resolving account %q: %w", account, err)
	}
	apps, err := a.reg.Applications(ctx)
	if err != nil {
		return "", false, fmt.Errorf("resolving account %q: %w", account, err)
	}
	for _, app := range apps {
		if app.Name == account {
			return app.ID, !app.Disabled, nil
		}
	}
	return "", false, nil
}

// validHostPort reports whether s is a host and a port 1-65535.
func validHostPort(s string) bool {
	h, p, err := net.SplitHostPort(s)
	if err != nil || h == "" {
		return false
	}
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && n != 0
}
