package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// pidList is a flag value holding process ids: comma-separated, and the
// flag may repeat.
type pidList []int

func (p *pidList) String() string {
	s := make([]string, len(*p))
	for i, pid := range *p {
		s[i] = strconv.Itoa(pid)
	}
	return strings.Join(s, ",")
}

func (p *pidList) Set(v string) error {
	for _, f := range splitList(v) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return fmt.Errorf("process id %q: want a positive number", f)
		}
		*p = append(*p, pid)
	}
	return nil
}

// cpuWatch is the set of processes whose CPU time a load run charges to
// the target: the hop between the load generator and the upstream.
type cpuWatch struct {
	pids []int
	// children adds every descendant of pids (dev's Postgres server and its
	// backends, nginx's workers), exited ones included: a process's
	// cutime/cstime hold the CPU of the children it has reaped.
	children bool
}

// procStat is what the watch reads of /proc/<pid>/stat.
type procStat struct {
	ppid int
	own  time.Duration // utime + stime: all threads, live and exited
	kids time.Duration // cutime + cstime: reaped children
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times on Linux.
const clockTick = time.Second / 100

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	// Fields after the parenthesised command name, which may hold spaces:
	// ppid is field 4 of the whole line, utime..cstime fields 14 to 17.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var n [5]int64
	for j, k := range []int{1, 11, 12, 13, 14} {
		if n[j], err = strconv.ParseInt(f[k], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return procStat{ppid: int(n[0]), own: time.Duration(n[1]+n[2]) * clockTick, kids: time.Duration(n[3]+n[4]) * clockTick}, nil
}

// total returns the CPU time the watched processes have used so far and
// how many processes that sums. A watched pid that is gone is an error: its
// CPU would silently drop out of the difference.
func (w *cpuWatch) total() (time.Duration, int, error) {
	if !w.children {
		var sum time.Duration
		for _, pid := range w.pids {
			st, err := readProcStat(pid)
			if err != nil {
				return 0, 0, fmt.Errorf("watched process %d: %w", pid, err)
			}
			sum += st.own
		}
		return sum, len(w.pids), nil
	}
	all := map[int]procStat{}
	kids := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue // exited between the glob and the read
		}
		all[pid] = st
		kids[st.ppid] = append(kids[st.ppid], pid)
	}
	var sum time.Duration
	seen := map[int]bool{}
	queue := append([]int(nil), w.pids...)
	for _, pid := range w.pids {
		if _, ok := all[pid]; !ok {
			return 0, 0, fmt.Errorf("watched process %d: not running", pid)
		}
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		st := all[pid]
		sum += st.own + st.kids
		queue = append(queue, kids[pid]...)
	}
	return sum, len(seen), nil
}

// cpuUse is the CPU a run charged to its target.
type cpuUse struct {
	pids      []int
	processes int           // summed at the end, descendants included
	window    time.Duration // used during the run
	tail      time.Duration // used after it, until the processes went idle
	settled   bool          // the processes went idle within the settle limit
}

func (u *cpuUse) total() time.Duration { return u.window + u.tail }

// settleWindow and settleIdle define idle for cpuWatch.settle: at most
// settleIdle of CPU in settleWindow (5 % of one core).
const (
	settleWindow = 500 * time.Millisecond
	settleIdle   = 25 * time.Millisecond
)

// settle waits, for at most limit, until the watched processes are idle,
// and returns the CPU they used meanwhile: work a run caused that finished
// after it (dev's meter catching up with the Kafka log) is still the run's.
func (w *cpuWatch) settle(limit time.Duration) (used time.Duration, idle bool, err error) {
	start, _, err := w.total()
	if err != nil {
		return 0, false, err
	}
	last, deadline := start, time.Now().Add(limit)
	for time.Now().Before(deadline) {
		time.Sleep(settleWindow)
		now, _, err := w.total()
		if err != nil {
			return now - start, false, err
		}
		if now-last <= settleIdle {
			return now - start, true, nil
		}
		last = now
	}
	return last - start, false, nil
}

// errNoCPU reports that CPU watching needs Linux's /proc.
var errNoCPU = errors.New("--edge-pid needs /proc (Linux)")
