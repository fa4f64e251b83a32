package meter

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter/policy/policytest"
)

// totals is what a set of streams must meter to.
type totals struct {
	records, messages, relays, units, bytes int64
}

// traffic fabricates n streams of about msgs messages each, interleaved as
// concurrent connections would be, half on a weight-3 message service and
// half on the carrying test-lines policy (weight 2). It returns the
// records and what they must meter to.
func traffic(n, msgs int, seed uint64) ([]kafka.Message, totals) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var tot totals
	gens := make([]*gen, n)
	per := make([][]kafka.Message, n)
	for i := range gens {
		g := newGen(1000 + i)
		gens[i] = g
		lines := i%2 == 1
		svc := "eth"
		if lines {
			svc = "lines"
		}
		per[i] = append(per[i], g.open(svc, fmt.Sprint("app", i%3), "sup"))
		for j := range msgs {
			d := up
			if j%2 == 1 {
				d = down
			}
			wire := uint64(50 + rng.IntN(500))
			payload := ""
			units := int64(1)
			if lines {
				// records of "x\n", split at random across messages
				k := rng.IntN(4)
				payload = strings.Repeat("x", k)
				units = 0
				// the last message ends a record: no carry at close
				if rng.IntN(2) == 0 || j == msgs-1 {
					payload += "\n"
					units = 1
				}
			}
			per[i] = append(per[i], g.msg(d, event.Role(1+2*(j%2)), wire, payload))
			tot.messages++
			tot.bytes += int64(wire)
			tot.relays += units
			if lines {
				tot.units += 2 * units
			} else {
				tot.units += 3 * units
			}
		}
		per[i] = append(per[i], g.close())
	}
	var out []kafka.Message
	for len(out) < n*(msgs+2) {
		i := rng.IntN(n)
		if len(per[i]) > 0 {
			out = append(out, per[i][0])
			per[i] = per[i][1:]
		}
	}
	tot.records = int64(len(out))
	return out, tot
}

func (e *env) services(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := e.store.PutService(ctx, ledger.Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC", ComputeUnitsPerRelay: 3}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutService(ctx, ledger.Service{ID: "lines", Protocol: "WEBSOCKET_JSONRPC", Policy: ledger.Policy{Name: policytest.LinesName}, ComputeUnitsPerRelay: 2}); err != nil {
		t.Fatal(err)
	}
}

// checkTotals asserts the ledger holds exactly tot: nothing lost, nothing
// counted twice, in every table that counts, and every stream complete.
func (e *env) checkTotals(t *testing.T, tot totals, streams int64, duplicates int64) {
	t.Helper()
	for _, c := range []struct {
		q    string
		want int64
	}{
		{`SELECT count(*) FROM messages`, tot.messages},
		{`SELECT coalesce(sum(units), 0) FROM messages`, tot.relays},
		{`SELECT coalesce(sum(m.units * s.compute_units), 0) FROM messages m JOIN streams s USING (stream_id)`, tot.units},
		{`SELECT coalesce(sum(messages), 0) FROM usage_minutes`, tot.messages},
		{`SELECT coalesce(sum(relays), 0) FROM usage_minutes`, tot.relays},
		{`SELECT coalesce(sum(units), 0) FROM usage_minutes`, tot.units},
		{`SELECT coalesce(sum(bytes), 0) FROM usage_minutes`, tot.bytes},
		{`SELECT coalesce(sum(relays), 0) FROM streams`, tot.relays},
		{`SELECT coalesce(sum(relays * compute_units), 0) FROM streams`, tot.units},
		{`SELECT coalesce(sum(messages_to_upstream + messages_to_client), 0) FROM streams`, tot.messages},
		{`SELECT count(*) FROM streams WHERE complete AND closed_at IS NOT NULL AND policy_state = '' AND gaps = ''`, streams},
		{`SELECT coalesce(sum(duplicates), 0) FROM streams`, duplicates},
		{`SELECT count(*) FROM findings`, 0},
		{`SELECT count(*) FROM quarantine`, 0},
		// every relay paired: its message has a counterpart, or its stream a first one
		{`SELECT count(*) FROM messages m JOIN streams s USING (stream_id)
			WHERE m.units > 0 AND coalesce(m.counterpart_seq, s.first_counterpart_seq) IS NULL`, 0},
	} {
		if got := e.count(t, c.q); got != c.want {
			t.Errorf("%s = %d, want %d", c.q, got, c.want)
		}
	}
	if t.Failed() {
		t.Logf("findings: %s", e.findingKinds(t))
	}
}

// TestCrash meters a large interleaved set of streams while crashing the
// meter again and again: its context is cancelled at random moments (in the
// middle of reading, building or committing a batch) and right after random
// commits, with no graceful flush. A new Meter on the same database and
// topic resumes each time; in the end the ledger holds exactly what was
// sent.
func TestCrash(t *testing.T) {
	e := newEnv(t, 4)
	e.services(t)
	const streams = 24
	recs, tot := traffic(streams, 400, 7)
	e.produce(t, recs...)

	crashes := 0
	for round := 0; e.committed(t) < tot.records; round++ {
		if round == 200 {
			t.Fatalf("not done after %d rounds: %d of %d records", round, e.committed(t), tot.records)
		}
		m := e.meter(t, func(c *Config) { c.BatchSize = 150 + rand.IntN(300) })
		ctx, cancel := context.WithCancel(context.Background())
		m.afterCommit = func(int, *ledger.Batch) {
			if rand.IntN(4) == 0 {
				cancel() // crash between the commit and anything after it
			}
		}
		timer := time.AfterFunc(time.Duration(rand.IntN(250))*time.Millisecond, cancel)
		before := e.committed(t)
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		// Wait for this meter to crash, or to finish the topic.
		for ctx.Err() == nil && e.committed(t) < tot.records {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		timer.Stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if c := e.committed(t); c < tot.records && c > before {
			crashes++
		}
	}
	t.Logf("%d records, %d crashes mid-stream", tot.records, crashes)
	if crashes < 3 {
		t.Fatalf("only %d crashes happened mid-stream; the test proved little", crashes)
	}
	e.checkTotals(t, tot, streams, 0)
}

// TestDuplicates produces records twice, interleaved with the originals
// and again all at the end (a producer retrying): every duplicate is
// dropped and counted.
func TestDuplicates(t *testing.T) {
	e := newEnv(t, 2)
	e.services(t)
	const streams = 6
	recs, tot := traffic(streams, 60, 11)
	var out []kafka.Message
	dups := int64(0)
	for i, r := range recs {
		out = append(out, r)
		if i%3 == 0 {
			out = append(out, r)
			dups++
		}
		if i%5 == 0 && i >= 2 {
			out = append(out, recs[i-2])
			dups++
		}
	}
	out = append(out, recs...) // a whole retried batch, after the streams closed
	dups += int64(len(recs))
	e.produce(t, out...)
	reg := prometheus.NewRegistry()
	m := e.meter(t, func(c *Config) { c.Registerer = reg })
	r := start(m)
	e.waitCommitted(t, int64(len(out)))
	r.stop(t)
	e.checkTotals(t, tot, streams, dups)
	if got := counter(t, reg, "relaymeter_meter_duplicates_total"); got != float64(dups) {
		t.Fatalf("duplicates_total = %v, want %d", got, dups)
	}
}

// TestRebalance meters with two Meters in one group; one leaves half way and
// the other takes over its partitions from the offsets in Postgres.
func TestRebalance(t *testing.T) {
	e := newEnv(t, 4)
	e.services(t)
	const streams = 12
	recs, tot := traffic(streams, 100, 13)
	var mu sync.Mutex
	byMeter := map[string]map[int]bool{"a": {}, "b": {}}
	meter := func(name string) *Meter {
		m := e.meter(t, nil)
		m.afterCommit = func(p int, _ *ledger.Batch) {
			mu.Lock()
			byMeter[name][p] = true
			mu.Unlock()
		}
		return m
	}
	a, b := start(meter("a")), start(meter("b"))
	// Both must hold partitions before the traffic starts, or a may meter
	// the first half alone while b is still joining.
	e.waitMembers(t, 2)
	// Produce until b has committed batches, while a runs too.
	sent := 0
	for {
		mu.Lock()
		bCommitted := len(byMeter["b"]) > 0
		mu.Unlock()
		if bCommitted && sent > 0 || sent >= len(recs)/2 {
			break
		}
		n := min(sent+20, len(recs)/2)
		e.produce(t, recs[sent:n]...)
		sent = n
		e.waitCommitted(t, int64(sent))
	}
	b.stop(t)
	mu.Lock()
	bParts := byMeter["b"]
	byMeter["a"] = map[int]bool{}
	mu.Unlock()
	if len(bParts) == 0 {
		t.Fatalf("meter b never committed a batch of the first %d records", sent)
	}
	e.produce(t, recs[sent:]...)
	e.waitCommitted(t, tot.records)
	a.stop(t)
	e.checkTotals(t, tot, streams, 0)
	taken := false
	for p := range bParts {
		taken = taken || byMeter["a"][p]
	}
	if !taken {
		t.Fatalf("meter a never committed on b's partitions %v after b left", bParts)
	}
}
