package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// line makes one input line of a closed-loop or fan-out run.
func line(round int, scenario, target string, msgs, p50, p99, cpu float64) string {
	c := ""
	if cpu > 0 {
		c = fmt.Sprintf(`,"cpu":{"us_per_msg":%g,"settled":true}`, cpu)
	}
	extra := ""
	if scenario == "fanout" {
		extra = `,"notified":1000,"delivered":1000`
	}
	return fmt.Sprintf(`{"round":%d,"scenario":%q,"target":%q,"result":{"msgs_per_s":%g,"p50_us":%g,"p99_us":%g%s%s}}`,
		round, scenario, target, msgs, p50, p99, c, extra)
}

func summarize(t *testing.T, lines ...string) *Summary {
	t.Helper()
	runs, err := Read(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return Summarize(runs)
}

// TestRatiosPerRound compares each round with nginx's same round, then
// takes the median: a drift that slows every target in round 2 does not
// show as a difference between targets.
func TestRatiosPerRound(t *testing.T) {
	s := summarize(t,
		line(1, "closed-1", "nginx", 10000, 100, 200, 10),
		line(1, "closed-1", "dev-ack", 8000, 250, 300, 20),
		line(2, "closed-1", "nginx", 5000, 200, 400, 20), // a slow round for all
		line(2, "closed-1", "dev-ack", 4000, 350, 600, 40),
		line(3, "closed-1", "nginx", 10000, 100, 200, 10),
		line(3, "closed-1", "dev-ack", 8000, 500, 1000, 20),
	)
	c := s.cell("closed-1", "dev-ack")
	if c.ThrRatio != 0.8 || c.P50Diff != 150 || c.P99Ratio != 1.5 || c.CPURatio != 2 {
		t.Fatalf("ratios thr %v Δp50 %v p99 %v cpu %v; want 0.8, 150, 1.5, 2", c.ThrRatio, c.P50Diff, c.P99Ratio, c.CPURatio)
	}
	if c.MsgsPerS != 8000 || c.P50us != 350 || c.P99us != 600 {
		t.Fatalf("medians %v msgs/s, p50 %v, p99 %v", c.MsgsPerS, c.P50us, c.P99us)
	}
	if math.Abs(c.Spread-0.5) > 1e-9 { // (8000 − 4000) / 8000
		t.Fatalf("spread %v", c.Spread)
	}
	checks := s.Checks("dev-ack")
	if checks[0].What != "1 conn p50 − nginx" || !checks[0].Met || checks[0].Rounds != "2/3" {
		t.Fatalf("p50 check %+v; want met on the median (+150 µs), in 2 of 3 rounds (+400 µs in round 3)", checks[0])
	}
	if !checks[1].Met || checks[1].Rounds != "2/3" {
		t.Fatalf("p99 check %+v; want met (1.5×), in 2 of 3 rounds (5× in round 3)", checks[1])
	}
}

// TestVerdicts checks each target against the bounds that apply to it, and
// says so for a target with nothing measured.
func TestVerdicts(t *testing.T) {
	s := summarize(t,
		line(1, "closed-1", "nginx", 7600, 130, 200, 15),
		line(1, "closed-1", "dev-ack", 190, 5190, 9000, 90),
		line(1, "closed-1", "edge-ack", 7000, 200, 300, 10),
		line(1, "closed-64", "nginx", 35000, 1800, 3000, 15),
		line(1, "closed-64", "dev-ack", 7700, 8000, 20000, 91),
		line(1, "closed-64", "edge-ack", 30000, 2000, 3500, 14),
		line(1, "closed-64", "edge-queue", 32000, 1900, 3100, 16),
		line(1, "fanout", "nginx", 12800, 300, 900, 5),
		line(1, "fanout", "edge-ack", 12800, 400, 1500, 6),
		`{"round":1,"scenario":"fanout","target":"dev-ack","result":{"msgs_per_s":12000,"p50_us":500,"p99_us":5000,"notified":1000,"delivered":990,"missing":10}}`,
		`{"round":1,"scenario":"fanout","target":"edge-queue","error":"edge: a connection broke"}`,
	)
	got := map[string][]Check{}
	for _, target := range []string{"dev-ack", "edge-ack", "edge-queue", "dev-queue"} {
		got[target] = s.Checks(target)
	}
	met := func(target string) (out []bool) {
		for _, c := range got[target] {
			out = append(out, c.Met)
		}
		return out
	}
	// dev-ack: p50, p99, 64-conn throughput, fan-out p99, fan-out delivered: all missed.
	if fmt.Sprint(met("dev-ack")) != "[false false false false false]" {
		t.Errorf("dev-ack: %+v", got["dev-ack"])
	}
	// edge-ack: p50 +70 µs, p99 1.5×, CPU 0.93×, fan-out p99 1.67×, all delivered.
	if fmt.Sprint(met("edge-ack")) != "[true true true true true]" {
		t.Errorf("edge-ack: %+v", got["edge-ack"])
	}
	// edge-queue: CPU 1.07× misses; its fan-out failed: nothing delivered is not "all".
	eq := got["edge-queue"]
	if len(eq) != 3 || eq[0].Met || eq[1].Known || eq[2].Met {
		t.Errorf("edge-queue: %+v", eq)
	}
	var b strings.Builder
	s.Render(&b)
	out := b.String()
	flat := strings.Join(strings.Fields(out), " ") // columns padded any width
	for _, want := range []string{
		"edge-ack MEETS ALL",
		"dev-ack MISSES 5 of 5",
		"edge-queue INCOMPLETE",
		"fan-out delivered 990/1000 all, once no",
		"1/1 rounds failed: edge: a connection broke",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(flat, "dev-queue MEETS") || strings.Contains(flat, "dev-queue MISSES") {
		t.Errorf("dev-queue, never measured, has a verdict:\n%s", out)
	}
}

func TestReadRejects(t *testing.T) {
	for _, in := range []string{`{"round":1}`, `not json`, `{"round":1,"scenario":"closed-1","target":"nginx"}`} {
		if _, err := Read(strings.NewReader(in)); err == nil {
			t.Errorf("Read(%q): no error", in)
		}
	}
}
