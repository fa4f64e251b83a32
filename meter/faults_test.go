package meter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter/policy"
	"github.com/relaymeter/relaymeter/meter/policy/policytest"
)

// findingKinds returns "kind×n" for every kind of finding, sorted.
func (e *env) findingKinds(t *testing.T) string {
	t.Helper()
	var s string
	if err := e.pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(k, ' ' ORDER BY k), '') FROM
		(SELECT kind || '×' || count(*) AS k FROM findings GROUP BY kind) f`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPoisonRecords: records no edge would write — empty, undecodable,
// without a schema major, out of range, text Postgres refuses (NUL,
// invalid UTF-8), and one Postgres refuses for a reason the meter did not
// foresee — never stop the partition: the text is cleaned and metered, the
// rest is quarantined whole with a finding, and everything around them is
// metered exactly. The unforeseen one costs a few halving retries, not the
// partition.
func TestPoisonRecords(t *testing.T) {
	e := newEnv(t, 1)
	e.services(t)
	ctx := context.Background()
	// What Postgres refuses and the meter cannot know about.
	if _, err := e.pool.Exec(ctx, `ALTER TABLE messages ADD CONSTRAINT refuse CHECK (method <> 'refuse-me')`); err != nil {
		t.Fatal(err)
	}
	recs, tot := traffic(6, 80, 3)
	nul, refused := newGen(900), newGen(901)
	dirty := []kafka.Message{
		nul.next(&event.Event{Body: &event.Event_Opened{Opened: &event.StreamOpened{Protocol: event.Protocol_WEBSOCKET_JSONRPC,
			Service: "eth", Application: "a\x00pp", Supplier: "s"}}}),
		nul.next(&event.Event{Body: &event.Event_Message{Message: &event.Message{Direction: up, Role: event.Role_REQUEST,
			Method: "eth_\x00", RpcId: strings.Repeat("9", 300), WireSize: 40}}}),
		nul.next(&event.Event{Body: &event.Event_Message{Message: &event.Message{Direction: down, Role: event.Role_RESPONSE, WireSize: 60}}}),
		refused.open("eth", "app-r", "sup"),
		refused.next(&event.Event{Body: &event.Event_Message{Message: &event.Message{Direction: up, Role: event.Role_REQUEST,
			Method: "refuse-me", WireSize: 10}}}),
		refused.req(),
	}
	noMajor, _ := proto.Marshal(&event.Event{StreamId: nul.id[:], Seq: 99})
	// Invalid UTF-8 in a string field (Go's protobuf refuses to write or
	// read it; a producer in another language could write it): metered,
	// cleaned.
	badUTF8 := nul.next(&event.Event{Body: &event.Event_Message{Message: &event.Message{Direction: up, Method: "eth_X"}}})
	badUTF8.Value = []byte(strings.Replace(string(badUTF8.Value), "eth_X", "eth_\xff", 1))
	timeless := newGen(902)
	timeless.at = -int64(time.Hour) // 1969: out of range
	poison := []kafka.Message{
		{Key: nul.id[:]}, // a tombstone
		{Key: []byte("k"), Value: []byte("\x0a\xff")}, // not protobuf
		{Value: noMajor},
		timeless.open("eth", "app-t", "sup"),
	}
	// Spread the dirty and poison records through the traffic.
	rng := rand.New(rand.NewPCG(5, 5))
	all := append([]kafka.Message(nil), recs...)
	for _, r := range append(append(dirty, badUTF8), poison...) {
		i := rng.IntN(len(all) + 1)
		all = append(all[:i], append([]kafka.Message{r}, all[i:]...)...)
	}
	// dirty's records keep their order within each stream.
	all = reorderStreams(all, nul, refused)
	e.produce(t, all...)
	reg := prometheus.NewRegistry()
	m := e.meter(t, func(c *Config) { c.Registerer, c.BatchSize = reg, 400 })
	r := start(m)
	e.waitCommitted(t, int64(len(all)))
	r.stop(t)

	for _, c := range []struct {
		q    string
		args []any
		want int64
	}{
		// traffic + nul's 3 messages + refused's last message
		{`SELECT count(*) FROM messages`, nil, tot.messages + 4},
		{`SELECT count(*) FROM messages WHERE stream_id = ANY($1) AND method = 'eth_call'`, []any{[]uuid.UUID{refused.id}}, 1},
		{`SELECT count(*) FROM messages WHERE method = 'refuse-me'`, nil, 0},
		{`SELECT count(*) FROM messages WHERE stream_id = $1 AND method = 'eth_` + "\uFFFD" + `' AND length(rpc_id) = 256`, []any{nul.id}, 1},
		{`SELECT count(*) FROM streams WHERE stream_id = $1 AND application = 'a` + "\uFFFD" + `pp'`, []any{nul.id}, 1},
		{`SELECT count(*) FROM quarantine`, nil, 5},
		{`SELECT count(*) FROM messages WHERE stream_id = $1 AND method = 'eth_` + "\uFFFD" + `' AND rpc_id = ''`, []any{nul.id}, 1},
		{`SELECT count(*) FROM quarantine WHERE error LIKE 'Postgres refused the record%refuse%'`, nil, 1},
		{`SELECT count(*) FROM quarantine WHERE record_value IS NULL OR record_value = ''`, nil, 1},
		{`SELECT coalesce(sum(messages), 0) FROM usage_minutes`, nil, tot.messages + 4},
	} {
		if got := e.count(t, c.q, c.args...); got != c.want {
			t.Errorf("%s = %d, want %d", c.q, got, c.want)
		}
	}
	// nul's three records, the refused stream's gap where its record was,
	// and the chain of the record whose bytes were changed after sealing.
	if got, want := e.findingKinds(t), "chain_mismatch×1 gap×1 quarantined×5 unclean_text×3"; got != want {
		t.Errorf("findings %s, want %s", got, want)
	}
	narrowed := counter(t, reg, "relaymeter_meter_batches_narrowed_total")
	if narrowed < 1 || narrowed > 10 {
		t.Errorf("%v narrowing retries for a batch of at most 400 records; want 1 to 10", narrowed)
	}
	t.Logf("narrowed %v times", narrowed)
}

// reorderStreams puts the records of the given streams back in seq order
// within their positions.
func reorderStreams(recs []kafka.Message, gens ...*gen) []kafka.Message {
	for _, g := range gens {
		var idx []int
		var vals []kafka.Message
		for i, r := range recs {
			if id, ok := event.PeekStreamID(r.Value); ok && id == g.id {
				idx = append(idx, i)
				vals = append(vals, r)
			}
		}
		seqOf := func(m kafka.Message) uint64 {
			var d event.Decoder
			ev, err := d.Decode(m.Value)
			if err != nil {
				return 0
			}
			return ev.Seq
		}
		for i := range vals {
			for j := i + 1; j < len(vals); j++ {
				if seqOf(vals[j]) < seqOf(vals[i]) {
					vals[i], vals[j] = vals[j], vals[i]
				}
			}
		}
		for k, i := range idx {
			recs[i] = vals[k]
		}
	}
	return recs
}

// TestLateAndReordered: events reordered across batches (a retry resent
// them late) fill their gaps instead of being dropped as duplicates: every
// message is metered once, the gap findings are resolved, last_seq never
// moves back, and true duplicates are still dropped.
func TestLateAndReordered(t *testing.T) {
	for _, size := range []int{1, 3, 100} {
		t.Run(fmt.Sprint("batch", size), func(t *testing.T) {
			e := newEnv(t, 0)
			e.services(t)
			m := e.meter(t, nil)
			g := newGen(1)
			ev := []kafka.Message{g.open("eth", "a", "s")}
			for range 8 {
				ev = append(ev, g.req(), g.resp())
			}
			ev = append(ev, g.close())
			// seqs 1 2 3 | 6 7 | 4 5 (late) | 8 9 | 5 (duplicate) | 10.. 18
			recs := []kafka.Message{ev[0], ev[1], ev[2], ev[5], ev[6], ev[3], ev[4], ev[7], ev[8], ev[4]}
			recs = append(recs, ev[9:]...)
			if err := e.drive(t, m, recs, size); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				q    string
				want int64
			}{
				{`SELECT count(*) FROM messages`, 16},
				{`SELECT count(DISTINCT seq) FROM messages`, 16},
				{`SELECT last_seq FROM streams`, 18},
				{`SELECT duplicates FROM streams`, 1},
				{`SELECT count(*) FROM streams WHERE complete AND gaps = ''`, 1},
				{`SELECT count(*) FROM findings WHERE kind = 'gap' AND seq = 4 AND resolved_at IS NOT NULL`, 1},
				{`SELECT count(*) FROM findings WHERE resolved_at IS NULL`, 0},
				{`SELECT coalesce(sum(messages), 0) FROM usage_minutes`, 16},
			} {
				if got := e.count(t, c.q); got != c.want {
					t.Errorf("%s = %d, want %d", c.q, got, c.want)
				}
			}
			if r := e.relays(t, g.id); len(r) != 16 {
				t.Errorf("%d relays, want 16: %v", len(r), r)
			}
		})
	}
}

// produceTo writes msgs to one partition.
func (e *env) produceTo(t testing.TB, partition int, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: e.topic, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return partition })}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// TestStreamMovesPartition: a stream whose later events land in another
// partition (partitions added; a resend after a restart) is metered whole
// by the two partitions' workers, whichever order they run in: nothing is
// dropped as a duplicate, nothing counted twice, last_seq never goes back.
func TestStreamMovesPartition(t *testing.T) {
	for _, order := range []string{"old partition first", "new partition first"} {
		t.Run(order, func(t *testing.T) {
			e := newEnv(t, 2)
			e.services(t)
			g := newGen(7)
			recs := []kafka.Message{g.open("eth", "a", "s")}
			for range 20 {
				recs = append(recs, g.req(), g.resp())
			}
			recs = append(recs, g.close())
			first, second := recs[:21], recs[21:]
			m := e.meter(t, nil)
			r := start(m)
			if order == "old partition first" {
				e.produceTo(t, 0, first...)
				e.waitCommitted(t, int64(len(first)))
				e.produceTo(t, 1, second...)
			} else {
				e.produceTo(t, 1, second...)
				e.waitCommitted(t, int64(len(second)))
				e.produceTo(t, 0, first...)
			}
			e.waitCommitted(t, int64(len(recs)))
			r.stop(t)
			for _, c := range []struct {
				q    string
				want int64
			}{
				{`SELECT count(*) FROM messages`, 40},
				{`SELECT count(DISTINCT seq) FROM messages`, 40},
				{`SELECT last_seq FROM streams`, 42},
				{`SELECT duplicates FROM streams`, 0},
				{`SELECT messages_to_upstream + messages_to_client FROM streams`, 40},
				{`SELECT coalesce(sum(messages), 0) FROM usage_minutes`, 40},
				{`SELECT count(*) FROM findings WHERE kind = 'gap' AND resolved_at IS NULL`, 0},
			} {
				if got := e.count(t, c.q); got != c.want {
					t.Errorf("%s = %d, want %d", c.q, got, c.want)
				}
			}
		})
	}
}

// TestZombie: two meters own one partition at once (a rebalance's
// zombie): each batch commits once, whichever of them gets there first,
// the other is fenced and resumes from the stored offset, and the ledger
// holds exactly what was sent.
func TestZombie(t *testing.T) {
	e := newEnv(t, 1)
	e.services(t)
	recs, tot := traffic(8, 300, 21)
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, reg := range regs {
		m := e.meter(t, func(c *Config) { c.Registerer, c.BatchSize = reg, 50 })
		wg.Go(func() { m.runPartition(ctx, 0) })
	}
	// Both fetch as the records arrive.
	for i := 0; i < len(recs); i += 100 {
		e.produce(t, recs[i:min(i+100, len(recs))]...)
	}
	e.waitCommitted(t, tot.records)
	cancel()
	wg.Wait()
	e.checkTotals(t, tot, 8, 0)
	var fenced float64
	for _, reg := range regs {
		fenced += counter(t, reg, "relaymeter_meter_fenced_total") + counter(t, reg, "relaymeter_meter_stream_conflicts_total")
	}
	if fenced == 0 {
		t.Fatal("neither meter was ever fenced: the two did not contend")
	}
	t.Logf("fenced or in conflict %v times", fenced)
}

// TestAmbiguousCommit: commits whose answer is lost (the connection drops
// after Postgres committed) leave the meter unsure; it resumes from the
// stored offset and counts nothing twice.
func TestAmbiguousCommit(t *testing.T) {
	e := newEnv(t, 2)
	e.services(t)
	proxy := pgtest.NewProxy(t, e.url)
	pool := e.poolAt(t, proxy.URL)
	recs, tot := traffic(8, 200, 17)
	e.produce(t, recs...)
	m := e.meter(t, func(c *Config) { c.Store, c.BatchSize = ledger.New(pool), 150 })
	proxy.LoseCommits(4)
	r := start(m)
	e.waitCommitted(t, tot.records)
	r.stop(t)
	if n := proxy.Lost.Load(); n < 4 {
		t.Fatalf("only %d commit answers lost", n)
	}
	e.checkTotals(t, tot, 8, 0)
}

// TestPostgresRestart: Postgres crashes (immediate shutdown, recovery from
// the WAL at the next start) and comes back while the meter runs; the
// meter waits, resumes, and the ledger holds exactly what was sent.
func TestPostgresRestart(t *testing.T) {
	srv, url := pgtest.Server(t)
	e := newEnvAt(t, url, 2)
	e.services(t)
	recs, tot := traffic(10, 300, 23)
	reg := prometheus.NewRegistry()
	m := e.meter(t, func(c *Config) { c.BatchSize, c.Registerer = 100, reg })
	r := start(m)
	e.produce(t, recs[:len(recs)/3]...)
	time.Sleep(200 * time.Millisecond)
	if err := srv.Crash(); err != nil {
		t.Fatal(err)
	}
	e.produce(t, recs[len(recs)/3:]...) // Kafka takes them while Postgres is down
	time.Sleep(time.Second)
	srv.Restart(t)
	e.waitCommitted(t, tot.records)
	r.stop(t)
	e.checkTotals(t, tot, 10, 0)
	if n := counter(t, reg, "relaymeter_meter_batch_failures_total"); n < 1 {
		t.Fatalf("%v failed batches: the crash did not land while the meter worked", n)
	}
}

// TestOffsetAhead: the topic is recreated (or lost its tail) under a meter
// whose stored offset is beyond the new log's end: a finding with both
// offsets, then the new log is metered from its start; events already
// metered are dropped as duplicates, new ones counted.
func TestOffsetAhead(t *testing.T) {
	e := newEnv(t, 1)
	e.services(t)
	recs, tot := traffic(4, 100, 9)
	e.produce(t, recs...)
	m := e.meter(t, nil)
	r := start(m)
	e.waitCommitted(t, tot.records)
	r.stop(t)
	// The topic is recreated: empty, then a resend of the last 50 records
	// and a new stream.
	e.recreateTopic(t)
	g := newGen(77)
	fresh := []kafka.Message{g.open("eth", "late", "s"), g.req(), g.resp(), g.close()}
	e.produce(t, append(append([]kafka.Message(nil), recs[len(recs)-50:]...), fresh...)...)
	r = start(e.meter(t, nil))
	// The stored offset goes back from the old log's end to the new one's.
	deadline := time.Now().Add(60 * time.Second)
	for e.committed(t) != 54 {
		if time.Now().After(deadline) {
			t.Fatalf("stored offset %d, want 54", e.committed(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.stop(t)
	if n := e.count(t, `SELECT count(*) FROM findings WHERE kind = 'offset_ahead' AND detail LIKE $1`,
		fmt.Sprintf("stored next offset %d is beyond the log's end 54 %%", tot.records)); n != 1 {
		var detail string
		e.pool.QueryRow(context.Background(), `SELECT string_agg(detail, ';') FROM findings`).Scan(&detail)
		t.Fatalf("offset_ahead findings: %d (%s: %s)", n, e.findingKinds(t), detail)
	}
	if n := e.count(t, `SELECT count(*) FROM messages`); n != tot.messages+2 {
		t.Fatalf("%d messages, want %d: the resend counted twice or the new stream lost", n, tot.messages+2)
	}
	if n := e.count(t, `SELECT coalesce(sum(duplicates), 0) FROM streams`); n != 50 {
		t.Fatalf("%d duplicates, want 50", n)
	}
}

// TestPolicyParamsPinned: a stream keeps the parameters it was opened
// with, across a restart of the meter, even when its service moves to new
// ones; the service cannot change them under the same version.
func TestPolicyVersions(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	put := func(n int) error {
		return e.store.PutService(ctx, ledger.Service{ID: "scaled", Protocol: "WEBSOCKET_JSONRPC",
			Policy: ledger.Policy{Name: policytest.ScaledName, Version: 1, Params: json.RawMessage(fmt.Sprintf(`{"n": %d}`, n))}})
	}
	if err := put(2); err != nil {
		t.Fatal(err)
	}
	old := newGen(1)
	e.produce(t, old.open("scaled", "a", "s"), old.req(), old.resp())
	r := start(e.meter(t, nil))
	e.waitCommitted(t, 3)
	// New parameters: a new version, in force from the next minute; a
	// second change within it is refused.
	if err := put(5); err != nil {
		t.Fatal(err)
	}
	if err := put(7); !errors.Is(err, ledger.ErrChangeTooSoon) {
		t.Fatalf("a second change within the minute: %v, want ErrChangeTooSoon", err)
	}
	// The running meter, which read the services before the change, prices
	// a stream opened after the change takes effect with the new version,
	// one opened before it (seen only now, as in a replay) with the old,
	// and the old stream keeps its version.
	young, late := newGen(2), newGen(3)
	young.at = time.Now().Add(2 * time.Minute).UnixNano()
	e.produce(t, old.req(), young.open("scaled", "a", "s"), young.req(), late.open("scaled", "a", "s"), late.req())
	e.waitCommitted(t, 8)
	r.stop(t)
	for _, c := range []struct {
		id   [16]byte
		want int64
	}{{old.id, 2 + 2 + 2}, {young.id, 5}, {late.id, 2}} {
		if got := e.count(t, `SELECT sum(units) FROM messages WHERE stream_id = $1`, c.id); got != c.want {
			t.Errorf("stream %x: %d units, want %d", c.id[15], got, c.want)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM service_policies WHERE service = 'scaled'`); n != 2 {
		t.Errorf("%d versions of the service, want 2", n)
	}
}

// TestAbandoned: a stream whose edge was killed (no StreamClosed) is
// closed by the meter once it has been idle for the timeout, its waiting
// relays unpaired and its memory released; an event that arrives after
// that opens it again.
func TestAbandoned(t *testing.T) {
	e := newEnv(t, 1)
	e.services(t)
	g := newGen(3)
	g.at = time.Now().Add(-time.Minute).UnixNano() // a minute ago, by the edge's clock
	e.produce(t, g.open("eth", "a", "s"), g.req(), g.req())
	reg := prometheus.NewRegistry()
	m := e.meter(t, func(c *Config) { c.StreamIdleTimeout, c.Registerer = 3*time.Second, reg })
	r := start(m)
	e.waitCommitted(t, 3)
	deadline := time.Now().Add(30 * time.Second)
	for e.count(t, `SELECT count(*) FROM streams WHERE close_reason = 'abandoned'`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the idle stream was never closed as abandoned")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := e.relays(t, g.id); strings.Join(got, " ") != "2:2/-! 3:3/-!" {
		t.Errorf("relays after abandon: %v, want both unpaired", got)
	}
	waitGauge(t, reg, "relaymeter_meter_streams_in_memory", 0) // released
	// The edge was not dead after all.
	g.at = time.Now().UnixNano()
	e.produce(t, g.resp(), g.close())
	e.waitCommitted(t, 5)
	r.stop(t)
	if got := e.relays(t, g.id); strings.Join(got, " ") != "2:2/4 3:3/4 4:3/4" {
		t.Errorf("relays after the stream came back: %v", got)
	}
	if got, want := e.findingKinds(t), "resumed×1"; got != want {
		t.Errorf("findings %s, want %s", got, want)
	}
	if n := e.count(t, `SELECT count(*) FROM streams WHERE close_reason = 'eof' AND complete`); n != 1 {
		t.Errorf("the stream did not end closed and complete")
	}
}

// TestUncrossedNotBilled: a close that says the last messages never crossed
// the edge (the connection ended while they waited) leaves them recorded
// and visible, but unbilled: usage, relays and the stream's relays count
// what crossed.
func TestUncrossedNotBilled(t *testing.T) {
	e := newEnv(t, 0)
	e.services(t)
	m := e.meter(t, nil)
	g := newGen(4)
	recs := []kafka.Message{g.open("eth", "a", "s"), g.req(), g.resp(), g.req(), g.resp(), g.req()}
	up, down := uint64(4), uint64(3) // seq 6 (request) and 5 (response) did not cross
	recs = append(recs, g.next(&event.Event{Body: &event.Event_Closed{Closed: &event.StreamClosed{Reason: "client lost",
		MessagesToUpstream: g.up, BytesToUpstream: g.upBytes, MessagesToClient: g.down, BytesToClient: g.downBytes,
		ForwardedToUpstreamThroughSeq: &up, ForwardedToClientThroughSeq: &down}}}))
	if err := e.drive(t, m, recs, 3); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q    string
		want int64
	}{
		{`SELECT count(*) FROM messages`, 5},
		{`SELECT coalesce(sum(messages), 0) FROM usage_minutes`, 3},
		{`SELECT coalesce(sum(units), 0) FROM usage_minutes`, 9},
		{`SELECT coalesce(sum(bytes), 0) FROM usage_minutes`, 500},
		{`SELECT forwarded_to_upstream_seq * 10 + forwarded_to_client_seq FROM streams`, 43},
	} {
		if got := e.count(t, c.q); got != c.want {
			t.Errorf("%s = %d, want %d", c.q, got, c.want)
		}
	}
	if got := e.relays(t, g.id); strings.Join(got, " ") != "2:2/3 3:2/3 4:4/3" {
		t.Errorf("relays %v, want the three that crossed", got)
	}
	sts, err := e.store.Streams(context.Background(), []uuid.UUID{g.id})
	if err != nil || len(sts) != 1 {
		t.Fatal(err)
	}
	if n, err := e.store.CrossedRelays(context.Background(), &sts[0]); err != nil || n != 3 {
		t.Errorf("crossed relays %d, %v; want 3", n, err)
	}
}

// panicky is a policy that panics on every message whose method is
// "boom", as a plugged-in policy with a bug might.
type panicky struct{}

func (panicky) Name() string { return "test-panicky" }
func (panicky) Version() int { return 1 }
func (panicky) Units(_ *policy.Stream, _ []byte, m *event.Message) (uint64, []byte, error) {
	if m.Method == "boom" {
		panic("index out of range")
	}
	return 1, nil, nil
}

var registerPanicky sync.Once

// TestPolicyPanics: a policy that panics costs the message its units (a
// policy_error finding says why), not the partition.
func TestPolicyPanics(t *testing.T) {
	registerPanicky.Do(func() {
		policy.Register(policy.Definition{Name: "test-panicky", Version: 1,
			New: func(json.RawMessage) (policy.Policy, error) { return panicky{}, nil }})
	})
	e := newEnv(t, 0)
	if err := e.store.PutService(context.Background(), ledger.Service{ID: "p", Protocol: "WEBSOCKET_JSONRPC",
		Policy: ledger.Policy{Name: "test-panicky"}}); err != nil {
		t.Fatal(err)
	}
	g := newGen(1)
	boom := g.next(&event.Event{Body: &event.Event_Message{Message: &event.Message{Direction: up, Method: "boom", WireSize: 10}}})
	g.up, g.upBytes = g.up+1, g.upBytes+10
	recs := []kafka.Message{g.open("p", "a", "s"), g.req(), boom, g.resp(), g.close()}
	if err := e.drive(t, e.meter(t, nil), recs, 100); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, `SELECT count(*) FROM messages`); n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}
	if n := e.count(t, `SELECT sum(units) FROM messages`); n != 2 {
		t.Fatalf("%d units, want 2: the panicking message 0", n)
	}
	if n := e.count(t, `SELECT count(*) FROM findings WHERE kind = 'policy_error' AND detail LIKE '%panic: index out of range%'`); n != 1 {
		t.Fatalf("policy_error findings: %s", e.findingKinds(t))
	}
}

// TestSlowBroker: a broker that takes longer than BatchWait to answer
// each fetch (a loaded broker, a fetch of a long backlog, a slow link)
// still gets every record metered. The reader's deadline once came from
// BatchWait: every answer then arrived after it, the same fetch failed on
// every retry, and the partition stood still while it looked idle.
func TestSlowBroker(t *testing.T) {
	e := newEnv(t, 0)
	kc := kafkatest.Start(t, kafkatest.Options{Partitions: 1, Topics: []string{e.topic}})
	e.brokers, e.partitions = kc.Brokers, 1
	e.services(t)
	recs, tot := traffic(4, 100, 33)
	e.produce(t, recs...)
	const delay = 300 * time.Millisecond
	var fetches atomic.Int64
	kc.Fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.Fake.KeepControl()
		fetches.Add(1)
		kc.Fake.SleepControl(func() { time.Sleep(delay) })
		return nil, nil, false
	})
	m := e.meter(t, func(c *Config) { c.BatchWait = 20 * time.Millisecond })
	r := start(m)
	e.waitCommitted(t, tot.records)
	r.stop(t)
	e.checkTotals(t, tot, 4, 0)
	if fetches.Load() == 0 {
		t.Fatal("no fetch went through the slow broker")
	}
}
