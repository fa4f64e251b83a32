// Package pgserver runs a private PostgreSQL server from the machine's
// PostgreSQL binaries: a throwaway one for tests, a durable one for
// `relaymeter dev`. It listens on a Unix socket only. Run as root, it runs
// the server as the `postgres` user, since PostgreSQL refuses to run as root.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configure a server.
type Options struct {
	// DataDir is the cluster directory; initdb runs when it has no cluster.
	DataDir string
	// SocketDir is where the Unix socket lives (default: DataDir when its
	// path is short enough for a socket, else a short directory under
	// /tmp).
	SocketDir string
	// Port names the socket file, .s.PGSQL.<Port> (default 5432).
	Port int
	// Durable keeps fsync on; a test server turns it off.
	Durable bool
	// LogFile receives the server's log (default DataDir + ".log").
	LogFile string
}

// Server is a running PostgreSQL server.
type Server struct {
	opts   Options
	cmd    *exec.Cmd
	exited chan error
	once   sync.Once // halting
}

// ErrNoPostgres reports that the PostgreSQL server binaries are missing.
var ErrNoPostgres = errors.New("pgserver: PostgreSQL server binaries (initdb, postgres) not found; install them, e.g. `apt-get install postgresql`, or set DATABASE_URL to a running server")

// Start initialises DataDir if needed and starts the server, returning once
// it accepts connections.
func Start(ctx context.Context, o Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if o.Port == 0 {
		o.Port = 5432
	}
	if o.DataDir, err = filepath.Abs(o.DataDir); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	if o.SocketDir == "" {
		o.SocketDir = o.DataDir
		if len(o.SocketDir) > 80 {
			h := fnv.New32a()
			h.Write([]byte(o.DataDir))
			o.SocketDir = filepath.Join(os.TempDir(), "relaymeter-pg-"+strconv.FormatUint(uint64(h.Sum32()), 36))
		}
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{o.SocketDir, o.DataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
		if err := chown(d, cred); err != nil {
			return nil, err
		}
		if err := Reachable(d); err != nil {
			return nil, err
		}
	}
	if o.LogFile == "" {
		o.LogFile = o.DataDir + ".log"
	}
	logf, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgserver: log: %w", err)
	}
	defer logf.Close()

	if _, err := os.Stat(filepath.Join(o.DataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		args := []string{"-D", o.DataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"}
		if !o.Durable {
			args = append(args, "--no-sync")
		}
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("pgserver: initdb %s failed (%w); see %s", o.DataDir, err, o.LogFile)
		}
	}
	// A server killed with its parent may leave postmaster.pid behind; the
	// server itself detects a stale one, but wait while the old process
	// still shuts down.
	waitStale(ctx, o.DataDir)

	args := []string{"-D", o.DataDir, "-k", o.SocketDir, "-p", strconv.Itoa(o.Port),
		"-c", "listen_addresses=", "-c", "max_connections=200"}
	if !o.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	s := &Server{opts: o, exited: make(chan error, 1)}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// The server stops (fast shutdown) when this process dies, however it dies.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits:
		// keep this goroutine on its thread until the child is gone.
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.exited <- s.cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("pgserver: start postgres: %w", err)
	}
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// URL returns a connection URL for database db on the server.
func (s *Server) URL(db string) string {
	q := url.Values{"host": {s.opts.SocketDir}, "port": {strconv.Itoa(s.opts.Port)}, "sslmode": {"disable"}}
	return "postgres://postgres@/" + url.PathEscape(db) + "?" + q.Encode()
}

// DataDir returns the cluster directory.
func (s *Server) DataDir() string { return s.opts.DataDir }

// Stop shuts the server down (fast shutdown) and waits for it to exit.
func (s *Server) Stop() error { return s.halt(syscall.SIGINT) }

// Crash stops the server the way `pg_ctl stop -m immediate` does: no
// checkpoint, connections cut; the next Start on the same options recovers
// from the WAL. It waits for the server to exit.
func (s *Server) Crash() error { return s.halt(syscall.SIGQUIT) }

// halt signals the server and waits for it to exit, once; later calls
// return at once.
func (s *Server) halt(sig syscall.Signal) error {
	var err error
	s.once.Do(func() {
		if s.cmd.Process == nil {
			return
		}
		_ = s.cmd.Process.Signal(sig)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			err = errors.New("pgserver: server did not stop within 30s; killed")
		}
	})
	return err
}

// Options returns the options the server runs with (defaults filled), to
// start it again.
func (s *Server) Options() Options { return s.opts }

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for {
		select {
		case err := <-s.exited:
			s.exited <- err
			return fmt.Errorf("pgserver: postgres exited during start (%v); see %s", err, s.opts.LogFile)
		default:
		}
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgserver: postgres not ready: %v; see %s", last, s.opts.LogFile)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// CreateDatabase creates database name on the server unless it exists.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgserver: create database %s: %w", name, err)
	}
	return nil
}

// BinDir finds the directory holding initdb and postgres: PATH first, then
// Debian's /usr/lib/postgresql/<version>/bin, newest version first.
func BinDir() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestV := "", -1
	for _, d := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil && v > bestV {
			best, bestV = d, v
		}
	}
	if best == "" {
		return "", ErrNoPostgres
	}
	return best, nil
}

// credential returns who the server runs as: nil (this user) unless this
// process is root, then the postgres user.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgserver: running as root needs a `postgres` user to run the server as (PostgreSQL refuses root; `apt-get install postgresql` creates it): %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func chown(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

// Reachable reports, when this process is root, whether the postgres user
// can reach dir: every ancestor must let it search. Otherwise it is nil.
func Reachable(dir string) error {
	cred, err := credential()
	if err != nil || cred == nil {
		return err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		ok := mode&0o001 != 0 ||
			(st.Uid == cred.Uid && mode&0o100 != 0) ||
			(st.Gid == cred.Gid && mode&0o010 != 0)
		if !ok {
			return &UnreachableError{Dir: dir, Blocker: d}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// UnreachableError reports a directory the postgres user cannot reach
// because an ancestor is closed to it (such as /root, mode 0700).
type UnreachableError struct{ Dir, Blocker string }

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("pgserver: the postgres user cannot reach %s: %s is closed to it", e.Dir, e.Blocker)
}

// waitStale waits up to 10 s for a server still running on dataDir to exit.
func waitStale(ctx context.Context, dataDir string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
		if err != nil {
			return
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
		if err != nil || syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
