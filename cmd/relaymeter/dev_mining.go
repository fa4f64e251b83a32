package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/beam"
	"github.com/relaymeter/relaymeter/ingest/record"
	edgesv2 "github.com/relaymeter/relaymeter/ingest/sv2"
	"github.com/relaymeter/relaymeter/internal/beamsim"
	"github.com/relaymeter/relaymeter/internal/sv2sim"
	"github.com/relaymeter/relaymeter/stratum/sv2/noise"
)

// devMiningFlags are dev's flags for the mining edges; the names are
// pinned by issue 11.
type devMiningFlags struct {
	sv2Listen, sv2Upstream, sv2UpstreamAuthority, sv2Service string
	sv2Reconnect, sv2Advertise                               string
	beamListen, beamUpstream, beamUpstreamCA, beamService    string
	beamUpstreamInsecure                                     bool
}

func (f *devMiningFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.sv2Listen, "sv2-listen", "", "run the Stratum V2 edge on this address (default: not run; with --demo, a free loopback port)")
	fs.StringVar(&f.sv2Upstream, "sv2-upstream", "", "the Sv2 pool's host:port (required with --sv2-listen unless --demo, which runs a built-in pool)")
	fs.StringVar(&f.sv2UpstreamAuthority, "sv2-upstream-authority-pubkey", "", "base58check authority public key the pool's Noise certificate must be signed by (required with --sv2-upstream)")
	fs.StringVar(&f.sv2Service, "sv2-service", "sv2", "service the Sv2 edge meters (a STRATUM_V2 service)")
	fs.StringVar(&f.sv2Reconnect, "sv2-reconnect", string(edgesv2.ReconnectRewrite), "the Sv2 edge's --reconnect: rewrite (a pool's Reconnect sends the miner back to the edge, which dials where the pool asked) or pass")
	fs.StringVar(&f.sv2Advertise, "sv2-advertise", "", "the Sv2 edge's --advertise: HOST:PORT a rewritten Reconnect names (default: the address the miner is connected to)")
	fs.StringVar(&f.beamListen, "beam-listen", "", "run the Beam edge (TLS toward miners) on this address (default: not run; with --demo, a free loopback port)")
	fs.StringVar(&f.beamUpstream, "beam-upstream", "", "the Beam node's stratum host:port, TLS (required with --beam-listen unless --demo, which runs a built-in node)")
	fs.StringVar(&f.beamUpstreamCA, "beam-upstream-ca", "", "PEM certificates the Beam node's certificate is verified against")
	fs.BoolVar(&f.beamUpstreamInsecure, "beam-upstream-insecure", false, "accept any certificate from the Beam node: encrypted, not authenticated")
	fs.StringVar(&f.beamService, "beam-service", "beam", "service the Beam edge meters (a BEAM service)")
}

// check refuses an edge's flags without the edge, before dev starts
// anything.
func (f devMiningFlags) check(demo bool) error {
	switch {
	case f.sv2Listen == "" && !demo && (f.sv2Upstream != "" || f.sv2UpstreamAuthority != ""):
		return errors.New("--sv2-upstream and --sv2-upstream-authority-pubkey are the Sv2 edge's: give --sv2-listen too")
	case f.sv2Upstream != "" && f.sv2UpstreamAuthority == "":
		return errors.New("--sv2-upstream needs --sv2-upstream-authority-pubkey: dev speaks Noise to the pool")
	case f.sv2Reconnect != string(edgesv2.ReconnectRewrite) && f.sv2Reconnect != string(edgesv2.ReconnectPass):
		return fmt.Errorf("--sv2-reconnect %q: want rewrite or pass", f.sv2Reconnect)
	case f.sv2Advertise != "" && !validHostPort(f.sv2Advertise):
		return fmt.Errorf("--sv2-advertise %q: want HOST:PORT", f.sv2Advertise)
	case f.beamListen == "" && !demo && (f.beamUpstream != "" || f.beamUpstreamCA != "" || f.beamUpstreamInsecure):
		return errors.New("--beam-upstream, --beam-upstream-ca and --beam-upstream-insecure are the Beam edge's: give --beam-listen too")
	case f.sv2Listen != "" && f.sv2Upstream == "" && !demo:
		return errors.New("--sv2-listen needs --sv2-upstream (or --demo, for a built-in pool)")
	case f.beamListen != "" && f.beamUpstream == "" && !demo:
		return errors.New("--beam-listen needs --beam-upstream (or --demo, for a built-in node)")
	case f.beamUpstream != "" && f.beamUpstreamCA == "" && !f.beamUpstreamInsecure:
		return errors.New("--beam-upstream needs --beam-upstream-ca (or --beam-upstream-insecure)")
	}
	return nil
}

// devMiningServices adds the sv2 and beam services dev meters by default,
// unless the configuration defines them.
func devMiningServices(services []serviceConfig, f devMiningFlags) []serviceConfig {
	if !hasService(services, f.sv2Service) {
		services = append(services, serviceConfig{ID: f.sv2Service, Protocol: "STRATUM_V2", Policy: "sv2-shares"})
	}
	if !hasService(services, f.beamService) {
		services = append(services, serviceConfig{ID: f.beamService, Protocol: "BEAM", Policy: "beam-solutions"})
	}
	return services
}

// devMining is what dev needs to run the mining edges.
type devMining struct {
	f          devMiningFlags
	demo       bool
	dataDir    string
	brokers    []string
	supplier   string
	openAccess bool
	keys       *identity.Cache
	ids        *identity.Registry
	demoKey    string
	reg        prometheus.Registerer
	log        *slog.Logger
	// edges counts the edges serving or flushing, for the meter's drain
	// at shutdown (stack.edges).
	edges *sync.WaitGroup
}

// devAuthorityKey returns dev's Sv2 authority key, kept as hex in the data
// dir (sv2-authority-key, as --authority-key-file reads it), made once.
func devAuthorityKey(dir string) (*noise.PrivateKey, error) {
	path := filepath.Join(dir, "sv2-authority-key")
	if _, err := os.Stat(path); err == nil {
		return readAuthorityKey(path)
	}
	key, err := noise.GeneratePrivateKey()
	if err != nil {
		return nil, fmt.Errorf("sv2 authority key: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key.Bytes())+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("sv2 authority key: %w", err)
	}
	return key, nil
}

// devBeamCert returns the TLS configuration of dev's Beam edge toward
// miners: the self-signed pair beam-edge.crt and beam-edge.key of the data
// dir, made when absent or expired.
// The pool it returns trusts that certificate, for a miner.
func devBeamCert(dir string) (*tls.Config, *x509.CertPool, error) {
	certFile, keyFile := filepath.Join(dir, "beam-edge.crt"), filepath.Join(dir, "beam-edge.key")
	fresh := false
	if pair, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		c, err := x509.ParseCertificate(pair.Certificate[0])
		fresh = err == nil && time.Now().Add(time.Hour).Before(c.NotAfter)
	}
	if !fresh {
		c, err := beamsim.SelfSigned("relaymeter dev beam edge")
		if err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
			return nil, nil, fmt.Errorf("beam edge key: %w", err)
		}
		if err := os.WriteFile(certFile, c.CertPEM, 0o644); err != nil {
			return nil, nil, fmt.Errorf("beam edge certificate: %w", err)
		}
	}
	down, err := beamDownstreamTLS(certFile, keyFile, false)
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("beam edge certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return down, pool, nil
}

// start runs the edges asked for (and with demo, their built-in peers
// and miners) in g, and returns the lines dev prints for them.
func (m *devMining) start(g *errgroup.Group, ctx context.Context) ([]string, error) {
	if m.f.sv2Listen == "" && m.demo {
		m.f.sv2Listen = "127.0.0.1:0"
	}
	if m.f.beamListen == "" && m.demo {
		m.f.beamListen = "127.0.0.1:0"
	}
	var lines []string
	if m.f.sv2Listen != "" {
		l, err := m.startSv2(g, ctx)
		if err != nil {
			return nil, err
		}
		lines = append(lines, l...)
	}
	if m.f.beamListen != "" {
		l, err := m.startBeam(g, ctx)
		if err != nil {
			return nil, err
		}
		lines = append(lines, l...)
	}
	return lines, nil
}

func (m *devMining) startSv2(g *errgroup.Group, ctx context.Context) ([]string, error) {
	authority, err := devAuthorityKey(m.dataDir)
	if err != nil {
		return nil, err
	}
	upstream, upstreamKey := m.f.sv2Upstream, m.f.sv2UpstreamAuthority
	if upstream == "" {
		if !m.demo {
			return nil, errors.New("--sv2-listen needs --sv2-upstream (or --demo, for a built-in pool)")
		}
		pool, poolKey, err := startDemoPool()
		if err != nil {
			return nil, err
		}
		g.Go(func() error { <-ctx.Done(); pool.Close(); return nil })
		upstream, upstreamKey = pool.Addr(), poolKey
		m.log.Info("dev: built-in Sv2 pool as the Sv2 upstream", "addr", upstream)
	} else if upstreamKey == "" {
		return nil, errors.New("--sv2-upstream needs --sv2-upstream-authority-pubkey: dev speaks Noise to the pool")
	}
	cfg := edgesv2.Config{Upstream: upstream, Service: m.f.sv2Service, Supplier: m.supplier, OpenAccess: m.openAccess,
		Accounts: newRegistryAccounts(m.ids, identity.DefaultTTL), Logger: m.log,
		Reconnect: edgesv2.ReconnectMode(m.f.sv2Reconnect), Advertise: m.f.sv2Advertise}
	if err := sv2EdgeNoise(&cfg, authority, 30*24*time.Hour, upstreamKey); err != nil {
		return nil, err
	}
	edge, rec, err := newSv2Edge(cfg, record.Config{Brokers: m.brokers, Topic: topicMessages, EdgeID: "dev-sv2",
		SpoolDir: filepath.Join(m.dataDir, "spool-sv2"), Logger: m.log,
		Registerer: prometheus.WrapRegistererWithPrefix("sv2_edge_", m.reg)}, m.reg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", m.f.sv2Listen)
	if err != nil {
		rec.Close(context.Background())
		return nil, fmt.Errorf("sv2 edge: listen %s: %w", m.f.sv2Listen, err)
	}
	m.edges.Add(1)
	g.Go(func() error { defer m.edges.Done(); return serveTCPEdge(ctx, ln, edge, rec) })
	addr := ln.Addr().String()
	if m.demo && m.f.sv2Upstream == "" {
		miner := &noise.Config{AuthorityKey: authority.PublicKey()}
		for i := range 2 {
			g.Go(func() error {
				demoSv2Miner(ctx, addr, miner, fmt.Sprintf("%s.rig%d", devDemoApplication, i+1), m.log)
				return nil
			})
		}
	}
	return []string{
		"sv2 authority " + authority.PublicKey().String(),
		"  sv2 edge   " + addr + "  → " + upstream,
	}, nil
}

func (m *devMining) startBeam(g *errgroup.Group, ctx context.Context) ([]string, error) {
	down, trust, err := devBeamCert(m.dataDir)
	if err != nil {
		return nil, err
	}
	upstream := m.f.beamUpstream
	var up *tls.Config
	if upstream == "" {
		if !m.demo {
			return nil, errors.New("--beam-listen needs --beam-upstream (or --demo, for a built-in node)")
		}
		c, err := beamsim.SelfSigned("relaymeter dev beam node")
		if err != nil {
			return nil, err
		}
		node, err := beamsim.StartNode(c.ServerConfig(), m.demoKey)
		if err != nil {
			return nil, err
		}
		g.Go(func() error { <-ctx.Done(); return ignoreClosed(node.Close()) })
		upstream = node.Addr()
		up = c.ClientConfig()
		m.log.Info("dev: built-in Beam node as the Beam upstream", "addr", upstream)
	} else if up, err = beamUpstreamTLS(m.f.beamUpstreamCA, "", m.f.beamUpstreamInsecure, false); err != nil {
		return nil, fmt.Errorf("--beam-upstream: %w", err)
	}
	cfg := beam.Config{Upstream: upstream, Service: m.f.beamService, Supplier: m.supplier, Keys: m.keys,
		RejectUnknownKeys: !m.openAccess, DownstreamTLS: down, UpstreamTLS: up, Logger: m.log}
	edge, rec, err := newBeamEdge(cfg, record.Config{Brokers: m.brokers, Topic: topicMessages, EdgeID: "dev-beam",
		SpoolDir: filepath.Join(m.dataDir, "spool-beam"), Logger: m.log,
		Registerer: prometheus.WrapRegistererWithPrefix("beam_edge_", m.reg)}, m.reg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", m.f.beamListen)
	if err != nil {
		rec.Close(context.Background())
		return nil, fmt.Errorf("beam edge: listen %s: %w", m.f.beamListen, err)
	}
	m.edges.Add(1)
	g.Go(func() error { defer m.edges.Done(); return serveTCPEdge(ctx, ln, edge, rec) })
	addr := ln.Addr().String()
	if m.demo && m.f.beamUpstream == "" {
		miner := &tls.Config{RootCAs: trust, MinVersion: tls.VersionTLS12}
		g.Go(func() error { demoBeamMiner(ctx, addr, miner, m.demoKey, m.log); return nil })
	}
	return []string{"  beam edge  " + addr + "  → " + upstream}, nil
}

// ignoreClosed drops the error of closing what is already closed.
func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// startDemoPool starts dev's built-in Sv2 pool: Noise, certified by an
// authority of its own whose public key it returns; every fifth share is
// rejected.
func startDemoPool() (*sv2sim.Pool, string, error) {
	authority, err := noise.GeneratePrivateKey()
	if err != nil {
		return nil, "", err
	}
	static, err := noise.GeneratePrivateKey()
	if err != nil {
		return nil, "", err
	}
	now := time.Now()
	cert, err := noise.IssueCertificate(authority, static.PublicKey(), now.Add(-time.Hour), now.Add(365*24*time.Hour))
	if err != nil {
		return nil, "", err
	}
	pool, err := sv2sim.StartPool(sv2sim.PoolConfig{Noise: &noise.Config{StaticKey: static, Certificate: &cert}, RejectEvery: 5})
	if err != nil {
		return nil, "", err
	}
	return pool, authority.PublicKey().String(), nil
}

// demoSv2Miner mines through the Sv2 edge as user, verifying the edge
// against dev's authority: ten shares a connection, a connection every
// two seconds, until ctx ends.
func demoSv2Miner(ctx context.Context, addr string, cfg *noise.Config, user string, log *slog.Logger) {
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := sv2sim.RunMiner(rctx, sv2sim.MinerConfig{Addr: addr, Noise: cfg, UserIdentity: user, Shares: 10})
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Debug("demo: sv2 miner", "user", user, "err", err)
		} else {
			log.Debug("demo: sv2 miner", "user", user, "accepted", res.Accepted, "rejected", res.Rejected)
		}
		sleep(ctx, 2*time.Second)
	}
}

// demoBeamMiner mines through the Beam edge with the demo key: ten
// solutions a connection, a connection every two seconds, until ctx ends.
// The key is never logged.
func demoBeamMiner(ctx context.Context, addr string, cfg *tls.Config, key string, log *slog.Logger) {
	for ctx.Err() == nil {
		m, err := beamsim.Dial(addr, cfg)
		if err == nil {
			stop := context.AfterFunc(ctx, func() { m.Close() })
			_ = m.Conn().SetDeadline(time.Now().Add(30 * time.Second))
			if _, err = m.Login(key); err == nil {
				_, err = m.Mine(10)
			}
			stop()
			m.Close()
		}
		if err != nil && ctx.Err() == nil {
			log.Debug("demo: beam miner", "err", strings.ReplaceAll(err.Error(), key, "<demo key>"))
		}
		sleep(ctx, 2*time.Second)
	}
}
