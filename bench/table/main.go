// Command table turns the runs of bench/ws-vs-nginx.sh into one table: per
// scenario and target the median over rounds of messages per second, p50
// and p99 latency and the hop's CPU per message, their ratios to nginx in
// the same round, and per target whether it meets the targets of the issue
// "The edge adds microseconds, not milliseconds".
//
// It reads JSON lines, one per run, as the script writes them:
//
//	{"round":1,"scenario":"closed-1","target":"nginx","result":{…loadgen ws --json…}}
//	{"round":1,"scenario":"closed-1","target":"dev-ack","error":"why the run failed"}
//
// Usage: go run ./bench/table [results.jsonl]   (default: standard input)
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// Run is one line of the input: one loadgen run of one target in one
// scenario and round.
type Run struct {
	Round    int     `json:"round"`
	Scenario string  `json:"scenario"`
	Target   string  `json:"target"`
	Result   *Result `json:"result"`
	Error    string  `json:"error"`
}

// Result is the part of `relaymeter loadgen ws --json` the table reads.
type Result struct {
	Mode       string  `json:"mode"`
	Conns      int     `json:"conns"`
	OK         int64   `json:"ok"`
	Failed     int64   `json:"failed"`
	Notified   int64   `json:"notified"`
	Delivered  int64   `json:"delivered"`
	Missing    int64   `json:"missing"`
	Duplicates int64   `json:"duplicates"`
	Messages   int64   `json:"messages"`
	MsgsPerS   float64 `json:"msgs_per_s"`
	CallsPerS  float64 `json:"calls_per_s"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	CPU        *struct {
		UsPerMsg float64 `json:"us_per_msg"`
		Settled  bool    `json:"settled"`
	} `json:"cpu"`
}

// Baseline is the target every other is compared with.
const Baseline = "nginx"

// Targets in the order the script runs them; unknown ones sort after.
// A TARGET@base (the script's --baseline) sorts before its TARGET.
var Targets = []string{"direct", "nginx", "dev-ack@base", "dev-ack", "dev-queue@base", "dev-queue",
	"edge-ack@base", "edge-ack", "edge-queue@base", "edge-queue"}

// Scenarios in the order the script runs them.
var Scenarios = []string{"closed-1", "closed-16", "closed-64", "fanout"}

// Read parses the runs, one JSON object per line; blank lines are skipped.
func Read(r io.Reader) ([]Run, error) {
	var runs []Run
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var run Run
		dec := json.NewDecoder(strings.NewReader(line))
		if err := dec.Decode(&run); err != nil {
			return nil, fmt.Errorf("table: line %d: %w", n, err)
		}
		if run.Scenario == "" || run.Target == "" || (run.Result == nil && run.Error == "") {
			return nil, fmt.Errorf("table: line %d: want round, scenario, target and a result or an error", n)
		}
		runs = append(runs, run)
	}
	return runs, sc.Err()
}

// Cell is one scenario and target over all rounds.
type Cell struct {
	Scenario, Target string
	Runs             []Run // in round order, failed ones included
	// Medians over the rounds that produced a result; NaN where none did.
	MsgsPerS, P50us, P99us, CPUus float64
	Spread                        float64 // (max − min) / median of MsgsPerS
	// Medians over rounds of the comparison with the baseline in the same
	// round: throughput ratio, p50 difference (µs), p99 ratio, CPU ratio.
	ThrRatio, P50Diff, P99Ratio, CPURatio float64
	Failed                                int   // rounds without a result
	Missing, Duplicates                   int64 // fan-out, over all rounds
	Notified                              int64
	Unsettled                             int // rounds whose hop was still busy at --cpu-settle
	perRound                              map[int]*Result
}

// Summary is the table: cells by scenario, then target.
type Summary struct {
	Rounds int
	Cells  []*Cell
}

func (s *Summary) cell(scenario, target string) *Cell {
	for _, c := range s.Cells {
		if c.Scenario == scenario && c.Target == target {
			return c
		}
	}
	return nil
}

// Summarize groups the runs into cells and computes their medians and
// their comparisons with the baseline, round by round.
func Summarize(runs []Run) *Summary {
	s := &Summary{}
	for _, r := range runs {
		s.Rounds = max(s.Rounds, r.Round)
		c := s.cell(r.Scenario, r.Target)
		if c == nil {
			c = &Cell{Scenario: r.Scenario, Target: r.Target, perRound: map[int]*Result{}}
			s.Cells = append(s.Cells, c)
		}
		c.Runs = append(c.Runs, r)
		if r.Result == nil {
			c.Failed++
			continue
		}
		c.perRound[r.Round] = r.Result
		c.Notified += r.Result.Notified
		c.Missing += r.Result.Missing
		c.Duplicates += r.Result.Duplicates
		if r.Result.CPU != nil && !r.Result.CPU.Settled {
			c.Unsettled++
		}
	}
	slices.SortFunc(s.Cells, func(a, b *Cell) int {
		if d := index(Scenarios, a.Scenario) - index(Scenarios, b.Scenario); d != 0 {
			return d
		}
		if a.Scenario != b.Scenario {
			return strings.Compare(a.Scenario, b.Scenario)
		}
		if d := index(Targets, a.Target) - index(Targets, b.Target); d != 0 {
			return d
		}
		return strings.Compare(a.Target, b.Target)
	})
	for _, c := range s.Cells {
		var msgs, p50, p99, cpu, thr, dp50, rp99, rcpu []float64
		base := s.cell(c.Scenario, Baseline)
		for round, r := range c.perRound {
			msgs = append(msgs, r.MsgsPerS)
			p50 = append(p50, r.P50us)
			p99 = append(p99, r.P99us)
			if r.CPU != nil {
				cpu = append(cpu, r.CPU.UsPerMsg)
			}
			if base == nil {
				continue
			}
			b := base.perRound[round]
			if b == nil {
				continue
			}
			thr = append(thr, r.MsgsPerS/b.MsgsPerS)
			dp50 = append(dp50, r.P50us-b.P50us)
			rp99 = append(rp99, r.P99us/b.P99us)
			if r.CPU != nil && b.CPU != nil {
				rcpu = append(rcpu, r.CPU.UsPerMsg/b.CPU.UsPerMsg)
			}
		}
		c.MsgsPerS, c.P50us, c.P99us, c.CPUus = median(msgs), median(p50), median(p99), median(cpu)
		c.ThrRatio, c.P50Diff, c.P99Ratio, c.CPURatio = median(thr), median(dp50), median(rp99), median(rcpu)
		c.Spread = math.NaN()
		if len(msgs) > 1 && c.MsgsPerS > 0 {
			c.Spread = (slices.Max(msgs) - slices.Min(msgs)) / c.MsgsPerS
		}
	}
	return s
}

func index(list []string, s string) int {
	if i := slices.Index(list, s); i >= 0 {
		return i
	}
	return len(list)
}

// median of xs; NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// Check is one of the targets, evaluated for one target.
type Check struct {
	What   string // what is compared, e.g. "1 conn p50 − nginx"
	Value  string // the median, formatted
	Bound  string // the target, e.g. "≤ +300 µs"
	Met    bool   // the median meets the bound
	Rounds string // rounds that met it, e.g. "2/3"
	Known  bool   // there was something to compare
}

// criterion is a target of the issue: which hops it applies to, the
// scenario it reads, and its test of one round's result against nginx's.
type criterion struct {
	what, bound, scenario string
	appliesTo             []string
	value                 func(c *Cell) float64        // the median shown
	format                func(v float64) string       // how it is shown
	meets                 func(v float64) bool         // the bound, on a median
	round                 func(r, nginx *Result) *bool // one round; nil: unknown
}

func ptr(b bool) *bool { return &b }

var criteria = []criterion{
	{
		what: "1 conn p50 − nginx", bound: "≤ +300 µs", scenario: "closed-1", appliesTo: []string{"dev-ack", "edge-ack"},
		value: func(c *Cell) float64 { return c.P50Diff }, format: func(v float64) string { return fmt.Sprintf("%+.0f µs", v) },
		meets: func(v float64) bool { return v <= 300 },
		round: func(r, n *Result) *bool { return ptr(r.P50us-n.P50us <= 300) },
	},
	{
		what: "1 conn p99 / nginx", bound: "≤ 2×", scenario: "closed-1", appliesTo: []string{"dev-ack", "edge-ack"},
		value: func(c *Cell) float64 { return c.P99Ratio }, format: func(v float64) string { return fmt.Sprintf("%.2f×", v) },
		meets: func(v float64) bool { return v <= 2 },
		round: func(r, n *Result) *bool { return ptr(r.P99us <= 2*n.P99us) },
	},
	{
		what: "64 conn msgs/s / nginx", bound: "≥ 0.6×", scenario: "closed-64", appliesTo: []string{"dev-ack"},
		value: func(c *Cell) float64 { return c.ThrRatio }, format: func(v float64) string { return fmt.Sprintf("%.2f×", v) },
		meets: func(v float64) bool { return v >= 0.6 },
		round: func(r, n *Result) *bool { return ptr(r.MsgsPerS >= 0.6*n.MsgsPerS) },
	},
	{
		what: "64 conn CPU/msg / nginx", bound: "≤ 1×", scenario: "closed-64", appliesTo: []string{"edge-ack", "edge-queue"},
		value: func(c *Cell) float64 { return c.CPURatio }, format: func(v float64) string { return fmt.Sprintf("%.2f×", v) },
		meets: func(v float64) bool { return v <= 1 },
		round: func(r, n *Result) *bool {
			if r.CPU == nil || n.CPU == nil {
				return nil
			}
			return ptr(r.CPU.UsPerMsg <= n.CPU.UsPerMsg)
		},
	},
	{
		what: "fan-out p99 / nginx", bound: "≤ 2×", scenario: "fanout", appliesTo: []string{"dev-ack", "dev-queue", "edge-ack", "edge-queue"},
		value: func(c *Cell) float64 { return c.P99Ratio }, format: func(v float64) string { return fmt.Sprintf("%.2f×", v) },
		meets: func(v float64) bool { return v <= 2 },
		round: func(r, n *Result) *bool { return ptr(r.P99us <= 2*n.P99us) },
	},
}

// Checks evaluates the targets that apply to target. A target's
// verdict is its median over rounds; Rounds says how many rounds met it.
func (s *Summary) Checks(target string) []Check {
	var out []Check
	for _, cr := range criteria {
		if !slices.Contains(cr.appliesTo, target) {
			continue
		}
		ck := Check{What: cr.what, Bound: cr.bound, Value: "n/a", Rounds: "0/0"}
		c, base := s.cell(cr.scenario, target), s.cell(cr.scenario, Baseline)
		if c != nil && base != nil {
			met, n := 0, 0
			for round, r := range c.perRound {
				b := base.perRound[round]
				if b == nil {
					continue
				}
				if ok := cr.round(r, b); ok != nil {
					n++
					if *ok {
						met++
					}
				}
			}
			if v := cr.value(c); !math.IsNaN(v) && n > 0 {
				ck.Value, ck.Met, ck.Known = cr.format(v), cr.meets(v), true
			}
			ck.Rounds = fmt.Sprintf("%d/%d", met, n)
		}
		out = append(out, ck)
		if cr.scenario == "fanout" {
			out = append(out, s.delivered(target))
		}
	}
	return out
}

// delivered is the fan-out's other target: every notification of every
// round delivered once, and no round failed.
func (s *Summary) delivered(target string) Check {
	ck := Check{What: "fan-out delivered", Bound: "all, once", Value: "n/a", Rounds: "0/0"}
	c := s.cell("fanout", target)
	if c == nil {
		return ck
	}
	met := 0
	for _, r := range c.perRound {
		if r.Missing == 0 && r.Duplicates == 0 && r.Notified > 0 {
			met++
		}
	}
	ck.Known = len(c.Runs) > 0
	ck.Met = c.Failed == 0 && met == len(c.Runs)
	ck.Value = fmt.Sprintf("%d/%d", c.Notified-c.Missing, c.Notified)
	if c.Duplicates > 0 {
		ck.Value += fmt.Sprintf(" +%d dup", c.Duplicates)
	}
	ck.Rounds = fmt.Sprintf("%d/%d", met, len(c.Runs))
	return ck
}

// Render writes the table and the verdict lines.
func (s *Summary) Render(w io.Writer) {
	f := func(v float64, format string) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "—"
		}
		return fmt.Sprintf(format, v)
	}
	fmt.Fprintf(w, "medians over %d round(s); ratios and differences are to %s in the same round, then the median of those\n\n", s.Rounds, Baseline)
	fmt.Fprintf(w, "%-10s %-10s %10s %7s %9s %9s %9s %8s %9s %8s %8s  %s\n",
		"scenario", "target", "msgs/s", "spread", "p50 µs", "p99 µs", "CPU µs/m", "thr×", "Δp50 µs", "p99×", "CPU×", "notes")
	last := ""
	for _, c := range s.Cells {
		if c.Scenario != last && last != "" {
			fmt.Fprintln(w)
		}
		last = c.Scenario
		var notes []string
		if c.Failed > 0 {
			notes = append(notes, fmt.Sprintf("%d/%d rounds failed: %s", c.Failed, len(c.Runs), firstError(c.Runs)))
		}
		if c.Scenario == "fanout" && c.Notified > 0 {
			n := fmt.Sprintf("delivered %d/%d", c.Notified-c.Missing, c.Notified)
			if c.Duplicates > 0 {
				n += fmt.Sprintf(", %d duplicates", c.Duplicates)
			}
			notes = append(notes, n)
		}
		if c.Unsettled > 0 {
			notes = append(notes, fmt.Sprintf("hop still busy at --cpu-settle in %d round(s): CPU undercounted", c.Unsettled))
		}
		thr, dp50, p99, cpu := f(c.ThrRatio, "%.2f"), f(c.P50Diff, "%+.0f"), f(c.P99Ratio, "%.2f"), f(c.CPURatio, "%.2f")
		if c.Target == Baseline {
			thr, dp50, p99, cpu = "1", "0", "1", "1"
			if math.IsNaN(c.CPUus) {
				cpu = "—"
			}
		}
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%-10s %-10s %10s %7s %9s %9s %9s %8s %9s %8s %8s  %s",
			c.Scenario, c.Target, f(c.MsgsPerS, "%.0f"), f(100*c.Spread, "%.0f%%"), f(c.P50us, "%.0f"), f(c.P99us, "%.0f"), f(c.CPUus, "%.1f"),
			thr, dp50, p99, cpu, strings.Join(notes, "; ")), " "))
	}
	fmt.Fprintf(w, "\ntargets (issue \"The edge adds microseconds, not milliseconds\"): verdict on the median; rounds = rounds that met it\n")
	for _, t := range Targets {
		checks := s.Checks(t)
		if len(checks) == 0 || !slices.ContainsFunc(s.Cells, func(c *Cell) bool { return c.Target == t }) {
			continue
		}
		met, known := 0, 0
		var rows []string
		for _, ck := range checks {
			mark := "n/a"
			if ck.Known {
				known++
				mark = "no"
				if ck.Met {
					met++
					mark = "yes"
				}
			}
			rows = append(rows, fmt.Sprintf("  %-24s %14s  %-10s %-4s rounds %s", ck.What, ck.Value, ck.Bound, mark, ck.Rounds))
		}
		verdict := "MEETS ALL"
		switch {
		case known < len(checks):
			verdict = fmt.Sprintf("INCOMPLETE (%d of %d measured, %d met)", known, len(checks), met)
		case met < len(checks):
			verdict = fmt.Sprintf("MISSES %d of %d", len(checks)-met, len(checks))
		}
		fmt.Fprintf(w, "%-10s %s\n", t, verdict)
		for _, r := range rows {
			fmt.Fprintf(w, "%-10s %s\n", "", r)
		}
	}
}

func firstError(runs []Run) string {
	for _, r := range runs {
		if r.Error != "" {
			e := r.Error
			if len(e) > 120 {
				e = e[:120] + "…"
			}
			return e
		}
	}
	return ""
}

func main() {
	in := io.Reader(os.Stdin)
	if len(os.Args) > 1 {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "table:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	runs, err := Read(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if len(runs) == 0 {
		fmt.Fprintln(os.Stderr, "table: no runs in the input")
		os.Exit(1)
	}
	Summarize(runs).Render(os.Stdout)
}
