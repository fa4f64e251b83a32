package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/migrations"
)

// Topic names are a contract with operators (ARCHITECTURE.md).
const (
	topicMessages = "relaymeter.messages.v1"
	topicClaims   = "relaymeter.claims.v1"
)

// newLogger returns a text logger on w at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// newRegistry returns a Prometheus registry with the process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// openStore connects to Postgres, optionally migrates, and syncs the
// configured services.
func openStore(ctx context.Context, url string, migrate bool, services []serviceConfig) (*ledger.Store, error) {
	if url == "" {
		return nil, errNoDatabase
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	if migrate {
		if err := migrations.Up(ctx, pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	store := ledger.New(pool)
	if err := syncServices(ctx, store, services); err != nil {
		pool.Close()
		return nil, err
	}
	return store, nil
}

// adminKey returns key, or the key kept in dir (made on first use), so a
// dev instance keeps its key across restarts.
func adminKey(key, dir string) (string, error) {
	if key != "" {
		return key, nil
	}
	path := filepath.Join(dir, "admin-key")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	key = "rmk_" + hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("admin key: %w", err)
	}
	return key, nil
}

// apiMux serves /metrics and, when api is not nil, the API.
func apiMux(api http.Handler, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if api != nil {
		mux.Handle("/", api)
	}
	return mux
}

// server is an HTTP server bound to its listener.
type server struct {
	name string
	srv  *http.Server
	ln   net.Listener
}

func listen(name, addr string, h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen %s: %w", name, addr, err)
	}
	return &server{name: name, ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// serve runs until ctx ends, then shuts down gracefully.
func (s *server) serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("%s: %w", s.name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: shutdown: %w", s.name, err)
	}
	return nil
}

// addr returns the listener's address, as a URL host.
func (s *server) addr() string { return s.ln.Addr().String() }

// syncServices writes the configured services into the ledger, where the
// meter reads them, once each one's policy builds. Parameters changed under a policy version already in
// use are refused: streams keep the parameters they started with.
func syncServices(ctx context.Context, store *ledger.Store, services []serviceConfig) error {
	if err := checkPolicies(services); err != nil {
		return err
	}
	for _, s := range services {
		params, err := json.Marshal(s.Params)
		if err != nil || s.Params == nil {
			params = []byte(`{}`)
		}
		if err := store.PutService(ctx, ledger.Service{
			ID: s.ID, Protocol: s.Protocol,
			Policy:               ledger.Policy{Name: s.Policy, Version: int32(s.PolicyVersion), Params: params},
			ComputeUnitsPerRelay: s.ComputeUnitsPerRelay, SessionSeconds: int32(s.SessionSeconds),
		}); err != nil {
			return err
		}
		for i, tc := range s.Tariffs {
			t := ledger.Tariff{Service: s.ID, Application: tc.Application, PricePerUnit: tc.PricePerUnit, Currency: tc.Currency}
			if tc.EffectiveFrom != "" {
				at, err := time.Parse(time.RFC3339, tc.EffectiveFrom)
				if err != nil {
					return fmt.Errorf("service %s: tariffs[%d]: effective_from: %w", s.ID, i, err)
				}
				t.EffectiveFrom = sql.Null[time.Time]{V: at, Valid: true}
			}
			if _, err := store.EnsureTariff(ctx, t); err != nil {
				return fmt.Errorf("service %s: tariffs[%d]: %w", s.ID, i, err)
			}
		}
		if s.FeeBps != nil {
			if err := store.EnsureServiceFee(ctx, s.ID, *s.FeeBps); err != nil {
				return fmt.Errorf("service %s: fee_bps: %w", s.ID, err)
			}
		}
	}
	return nil
}

// startCPUProfile profiles this process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
