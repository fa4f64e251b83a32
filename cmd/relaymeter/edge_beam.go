package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/beam"
	"github.com/relaymeter/relaymeter/ingest/record"
)

// defaultBeamSpoolDir is edge beam's spool directory unless --spool-dir
// says otherwise: one edge per spool directory, so not edge ws's.
const defaultBeamSpoolDir = ".relaymeter/spool-beam"

func init() {
	registerEdge("beam", runEdgeBeam)
}

// runEdgeBeam runs the Beam mining edge.
func runEdgeBeam(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("edge beam", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	listenAddr := fs.String("listen", "127.0.0.1:3333", "listen address miners connect to (TLS unless --plaintext-downstream)")
	upstream := fs.String("upstream", "", "the Beam node's stratum address, host:port (required)")
	service := fs.String("service", "beam", "service this edge meters")
	supplier := fs.String("supplier", "", "supplier (node operator) recorded in each stream (required)")
	kafka := fs.String("kafka", "", "Kafka brokers, comma-separated (required)")
	databaseURL := fs.String("database-url", "", "Postgres URL of the identity registry api keys resolve in (required with --reject-unknown-keys; without it every key bills beam:<sha256 prefix>)")
	keyCacheTTL := fs.Duration("key-cache-ttl", identity.DefaultTTL, "how long a key's answer is trusted before the registry is asked again")
	reject := fs.Bool("reject-unknown-keys", false, "answer the login of a key the registry does not know with -32003 and close, without contacting the node")
	tlsCert := fs.String("tls-cert", "", "PEM certificate presented to miners (required unless --plaintext-downstream)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	plainDown := fs.Bool("plaintext-downstream", false, "serve miners plain TCP instead of TLS")
	upstreamCA := fs.String("upstream-ca", "", "PEM certificates the node's certificate is verified against (required unless --upstream-insecure or --plaintext-upstream)")
	upstreamInsecure := fs.Bool("upstream-insecure", false, "accept any certificate from the node (its self-signed default): encrypted, not authenticated")
	upstreamName := fs.String("upstream-server-name", "", "name the node's certificate is checked for (default: --upstream's host)")
	plainUp := fs.Bool("plaintext-upstream", false, "dial the node plain TCP instead of TLS")
	maxConns := fs.Int("max-connections", 10000, "most miner connections at once, logged in or not; more are closed at once")
	loginTimeout := fs.Duration("login-timeout", 10*time.Second, "a miner must complete TLS and send its login within this")
	writeTimeout := fs.Duration("write-timeout", 10*time.Second, "a side that does not take a line within this ends the connection")
	idleTimeout := fs.Duration("idle-timeout", beam.DefaultIdleTimeout, "a logged-in connection with no line in either direction for this long is closed")
	edgeID := fs.String("edge-id", "", "this edge's id in every event (default: the host name)")
	spoolDir := fs.String("spool-dir", defaultBeamSpoolDir, "local directory where events go, fsynced, while Kafka cannot take them (one edge per directory; \"\" disables it)")
	spoolMax := fs.Int64("spool-max-bytes", 1<<30, "spool size cap in bytes")
	metricsAddr := fs.String("http", "", "serve /metrics here (default: not served)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.String("config", "", "YAML configuration file")
	fc, err := parseConfig(fs, args)
	if err != nil {
		return err
	}
	if len(fc.args) != 0 {
		return fmt.Errorf("edge beam: unexpected arguments %q", fc.args)
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
	case *reject && *databaseURL == "":
		return errors.New("--reject-unknown-keys needs --database-url: without a registry every key is unknown")
	case *idleTimeout <= 0:
		return fmt.Errorf("--idle-timeout %v: want a positive duration", *idleTimeout)
	case *keyCacheTTL <= 0:
		return fmt.Errorf("--key-cache-ttl %v: want a positive duration", *keyCacheTTL)
	}
	down, err := beamDownstreamTLS(*tlsCert, *tlsKey, *plainDown)
	if err != nil {
		return err
	}
	up, err := beamUpstreamTLS(*upstreamCA, *upstreamName, *upstreamInsecure, *plainUp)
	if err != nil {
		return err
	}
	if *edgeID == "" {
		*edgeID, _ = os.Hostname()
	}
	cfg := beam.Config{Upstream: *upstream, Service: *service, Supplier: *supplier, RejectUnknownKeys: *reject,
		DownstreamTLS: down, UpstreamTLS: up, MaxConnections: *maxConns, LoginTimeout: *loginTimeout, WriteTimeout: *writeTimeout,
		IdleTimeout: *idleTimeout, Logger: log}
	if *databaseURL != "" {
		pool, err := openKeyRegistry(ctx, *databaseURL, log)
		if err != nil {
			return err
		}
		defer pool.Close()
		cfg.Keys = identity.NewCache(identity.NewRegistry(pool), identity.CacheConfig{TTL: *keyCacheTTL})
	}
	reg := newRegistry()
	edge, rec, err := newBeamEdge(cfg, record.Config{Brokers: splitList(*kafka), Topic: topicMessages, EdgeID: *edgeID,
		SpoolDir: *spoolDir, SpoolMaxBytes: *spoolMax, Logger: log, Registerer: reg}, reg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listenAddr)
	if err != nil {
		rec.Close(context.Background())
		return fmt.Errorf("edge beam: listen %s: %w", *listenAddr, err)
	}
	log.Info("edge beam: listening", "addr", ln.Addr().String(), "upstream", *upstream, "service", *service,
		"downstream_tls", down != nil, "upstream_tls", up != nil, "keys", cfg.Keys != nil, "reject_unknown_keys", *reject)
	fns := []func(context.Context) error{func(ctx context.Context) error { return serveTCPEdge(ctx, ln, edge, rec) }}
	if *metricsAddr != "" {
		ms, err := listen("metrics", *metricsAddr, apiMux(nil, reg))
		if err != nil {
			ln.Close()
			rec.Close(context.Background())
			return err
		}
		fns = append(fns, ms.serve)
	}
	return runUntilDone(ctx, fns...)
}

// newBeamEdge makes a Beam edge of cfg recording through a new recorder of
// rc, its metrics on reg: edge beam and dev build the edge this way.
func newBeamEdge(cfg beam.Config, rc record.Config, reg prometheus.Registerer) (*beam.Edge, *record.Recorder, error) {
	rec, err := record.New(rc)
	if err != nil {
		return nil, nil, err
	}
	cfg.Recorder, cfg.Registerer = rec, reg
	edge, err := beam.New(cfg)
	if err != nil {
		rec.Close(context.Background())
		return nil, nil, err
	}
	return edge, rec, nil
}

// beamDownstreamTLS is the TLS configuration toward miners; nil for plain.
func beamDownstreamTLS(certFile, keyFile string, plain bool) (*tls.Config, error) {
	if plain {
		if certFile != "" || keyFile != "" {
			return nil, errors.New("--plaintext-downstream and --tls-cert/--tls-key: choose one")
		}
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--tls-cert and --tls-key are required (or --plaintext-downstream)")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// beamUpstreamTLS is the TLS configuration toward the node; nil for plain.
func beamUpstreamTLS(caFile, serverName string, insecure, plain bool) (*tls.Config, error) {
	switch {
	case plain && (caFile != "" || insecure):
		return nil, errors.New("--plaintext-upstream and --upstream-ca/--upstream-insecure: choose one")
	case plain:
		return nil, nil
	case caFile != "" && insecure:
		return nil, errors.New("--upstream-ca and --upstream-insecure: choose one")
	case insecure:
		return &tls.Config{InsecureSkipVerify: true, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil
	case caFile == "":
		return nil, errors.New("--upstream-ca is required to verify the node (or --upstream-insecure, or --plaintext-upstream)")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--upstream-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--upstream-ca %s: no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil
}
