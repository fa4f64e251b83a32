package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ServerCPU returns the CPU time used so far by the Postgres server behind
// pool (the postmaster, its exited children and its live ones), or -1
// where /proc cannot tell (another machine, or Linux without /proc).
func ServerCPU(ctx context.Context, pool *pgxpool.Pool) time.Duration {
	var pid int
	if err := pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		return -1
	}
	st, ok := procStat(pid)
	if !ok {
		return -1
	}
	post, _ := strconv.Atoi(st[1])
	pst, ok := procStat(post)
	if !ok {
		return -1
	}
	total := ticks(pst, 11) + ticks(pst, 12) + ticks(pst, 13) + ticks(pst, 14)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if s, ok := procStat(p); ok && s[1] == strconv.Itoa(post) {
			total += ticks(s, 11) + ticks(s, 12)
		}
	}
	return time.Duration(total) * time.Second / 100
}

// procStat returns the fields of /proc/pid/stat after the command: [0] is
// the state, [1] the parent pid, [11] utime, [12] stime, [13] cutime, [14] cstime.
func procStat(pid int) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, false
	}
	f := strings.Fields(s[i+1:])
	return f, len(f) > 14
}

func ticks(f []string, i int) int64 {
	n, _ := strconv.ParseInt(f[i], 10, 64)
	return n
}
