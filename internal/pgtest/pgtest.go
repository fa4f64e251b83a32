// Package pgtest gives tests a real, migrated Postgres database of their
// own: a server started once per test binary from the machine's PostgreSQL
// binaries (or the one DATABASE_URL names), a migrated template database,
// and a fresh clone of it per test.
//
// A package that uses it runs its tests through Main:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/internal/pgserver"
	"github.com/relaymeter/relaymeter/migrations"
)

const template = "relaymeter_test_template"

var (
	once    sync.Once
	server  *pgserver.Server
	dir     string
	baseURL string // URL of the maintenance database
	initErr error
	counter atomic.Int64
)

// Main runs the tests and stops the server they started.
func Main(m *testing.M) int {
	code := m.Run()
	if server != nil {
		server.Stop()
		os.RemoveAll(dir)
	}
	return code
}

// DB returns a pool on a new database cloned from the migrated template,
// dropped when t ends, and the database's URL.
func DB(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	once.Do(func() { initErr = start() })
	if initErr != nil {
		t.Fatalf("pgtest: %v", initErr)
	}
	ctx := context.Background()
	name := fmt.Sprintf("t_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, counter.Add(1))
	admin, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template); err != nil {
		t.Fatalf("pgtest: clone template: %v", err)
	}
	url := withDatabase(baseURL, name)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		c, err := pgx.Connect(context.Background(), baseURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return pool, url
}

func start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if env := os.Getenv("DATABASE_URL"); env != "" {
		baseURL = env
	} else {
		base := os.TempDir()
		if pgserver.Reachable(base) != nil {
			base = "/tmp"
		}
		var err error
		dir, err = os.MkdirTemp(base, "relaymeter-pgtest-")
		if err != nil {
			return err
		}
		server, err = pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(dir, "data"), SocketDir: dir})
		if err != nil {
			os.RemoveAll(dir)
			return err
		}
		baseURL = server.URL("postgres")
	}
	return ensureTemplate(ctx)
}

// ensureTemplate creates and migrates the template database once; an
// advisory lock keeps concurrent test binaries sharing one server in step.
func ensureTemplate(ctx context.Context) error {
	admin, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
		return err
	}
	defer admin.Exec(ctx, "SELECT pg_advisory_unlock(727274)")
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", template).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+template); err != nil {
			return err
		}
	}
	// Migrate every time: a no-op when current, and it brings an old
	// template (from an earlier run against DATABASE_URL) up to date.
	pool, err := pgxpool.New(ctx, withDatabase(baseURL, template))
	if err != nil {
		return err
	}
	err = migrations.Up(ctx, pool)
	pool.Close()
	return err
}

// withDatabase returns url naming database db instead of its own. It takes
// URLs (postgres://…/db?…) and keyword/value strings (… dbname=db).
func withDatabase(url, db string) string {
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		return url + " dbname=" + db
	}
	head, tail := url, ""
	if i := strings.Index(url, "?"); i >= 0 {
		head, tail = url[:i], url[i:]
	}
	scheme := strings.Index(head, "://") + 3
	if j := strings.Index(head[scheme:], "/"); j >= 0 {
		head = head[:scheme+j]
	}
	return head + "/" + db + tail
}

// Dedicated is a Postgres server of one test's own, which the test may
// crash and restart without disturbing the others.
type Dedicated struct {
	*pgserver.Server
}

// Server starts a server for t alone, with a migrated database, and
// returns it and the database's URL; it stops when t ends. Like the shared
// server it runs with fsync off; DurableServer keeps it on.
func Server(t testing.TB) (*Dedicated, string) { return dedicated(t, false) }

// DurableServer is Server with fsync, synchronous commit and full page
// writes on, as a production server runs: for benchmarks that must pay
// for durability.
func DurableServer(t testing.TB) (*Dedicated, string) { return dedicated(t, true) }

func dedicated(t testing.TB, durable bool) (*Dedicated, string) {
	t.Helper()
	base := os.TempDir()
	if pgserver.Reachable(base) != nil {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "relaymeter-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(dir, "data"), SocketDir: dir, Durable: durable})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("pgtest: %v", err)
	}
	d := &Dedicated{srv}
	t.Cleanup(func() {
		d.Stop()
		os.RemoveAll(dir)
	})
	url := srv.URL("postgres")
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := migrations.Up(ctx, pool); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return d, url
}

// Restart starts the server again on its data directory, after Stop or
// Crash.
func (d *Dedicated) Restart(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgserver.Start(ctx, d.Options())
	if err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
	d.Server = srv
}
