package meter

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter/policy/policytest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func init() { policytest.Register() }

// gen fabricates one stream's events, sealed and chained as an edge would.
type gen struct {
	id    [16]byte
	seq   uint64
	chain [event.ChainSize]byte
	at    int64
	// what the stream carried, for its StreamClosed
	up, upBytes, down, downBytes uint64
}

var base = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixNano()

func newGen(n int) *gen {
	g := &gen{at: base}
	g.id[0], g.id[6] = 0x01, 0x70 // UUIDv7-ish
	g.id[12], g.id[13], g.id[14], g.id[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return g
}

// next seals ev as the stream's next event, 1 ms after the previous one.
func (g *gen) next(ev *event.Event) kafka.Message {
	g.seq++
	g.at += int64(time.Millisecond)
	ev.StreamId, ev.Seq, ev.EdgeId, ev.ObservedAt = g.id[:], g.seq, "edge-1", g.at
	v, chain, err := event.Seal(nil, ev, g.chain)
	if err != nil {
		panic(err)
	}
	g.chain = chain
	return kafka.Message{Key: append([]byte(nil), g.id[:]...), Value: v}
}

func (g *gen) open(service, app, supplier string) kafka.Message {
	return g.next(&event.Event{Body: &event.Event_Opened{Opened: &event.StreamOpened{
		Protocol: event.Protocol_WEBSOCKET_JSONRPC, Service: service, Application: app, Supplier: supplier}}})
}

const (
	up   = event.Direction_CLIENT_TO_UPSTREAM
	down = event.Direction_UPSTREAM_TO_CLIENT
)

func (g *gen) msg(d event.Direction, role event.Role, wire uint64, payload string) kafka.Message {
	if d == up {
		g.up, g.upBytes = g.up+1, g.upBytes+wire
	} else {
		g.down, g.downBytes = g.down+1, g.downBytes+wire
	}
	return g.next(&event.Event{Body: &event.Event_Message{Message: &event.Message{Direction: d, Role: role,
		Method: "eth_call", WireSize: wire, PayloadSize: uint64(len(payload)), Payload: []byte(payload)}}})
}

func (g *gen) req() kafka.Message  { return g.msg(up, event.Role_REQUEST, 100, "") }
func (g *gen) resp() kafka.Message { return g.msg(down, event.Role_RESPONSE, 300, "") }
func (g *gen) note() kafka.Message { return g.msg(down, event.Role_NOTIFICATION, 50, "") }

func (g *gen) close() kafka.Message {
	return g.next(&event.Event{Body: &event.Event_Closed{Closed: &event.StreamClosed{Reason: "eof",
		MessagesToUpstream: g.up, BytesToUpstream: g.upBytes, MessagesToClient: g.down, BytesToClient: g.downBytes}}})
}

// env is a migrated database and, when Kafka is needed, a test cluster.
type env struct {
	pool       *pgxpool.Pool
	url        string
	store      *ledger.Store
	brokers    []string
	topic      string
	partitions int
}

func newEnv(t *testing.T, partitions int) *env {
	t.Helper()
	_, url := pgtestDB(t)
	return newEnvAt(t, url, partitions)
}

// newEnvAt is newEnv on the migrated database at url.
func newEnvAt(t *testing.T, url string, partitions int) *env {
	t.Helper()
	e := &env{url: url, topic: DefaultTopic, partitions: partitions}
	e.pool = e.poolAt(t, url)
	e.store = ledger.New(e.pool)
	if partitions > 0 {
		e.brokers = startKafka(t, partitions, e.topic)
	}
	return e
}

// poolAt opens a pool on url, closed when t ends.
func (e *env) poolAt(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// recreateTopic deletes the events topic and creates it again, empty.
func (e *env) recreateTopic(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(e.brokers...)}
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{e.topic}}); err != nil {
		t.Fatal(err)
	}
	for {
		res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
			{Topic: e.topic, NumPartitions: e.partitions, ReplicationFactor: 1}}})
		if err == nil && res.Errors[e.topic] == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("recreate topic: %v, %v", err, res)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitGauge waits until a gauge of reg reads want.
func waitGauge(t testing.TB, reg prometheus.Gatherer, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := -1.0
		for _, mf := range mfs {
			if mf.GetName() == name {
				got = mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var pgtestDB = pgtest.DB

func startKafka(t testing.TB, partitions int, topic string) []string {
	t.Helper()
	return kafkatest.Start(t, kafkatest.Options{Partitions: partitions, Topics: []string{topic}}).Brokers
}

func (e *env) meter(t testing.TB, mutate func(*Config)) *Meter {
	t.Helper()
	// The generated events are stamped a month back (base): a partition
	// that catches up takes the wall clock as its time and would close
	// every open stream as abandoned mid-test under the default idle
	// timeout of an hour. Tests of abandonment set their own.
	cfg := Config{Brokers: e.brokers, Store: e.store, BatchSize: 500, BatchWait: 20 * time.Millisecond,
		RetryBackoff: 50 * time.Millisecond, Registerer: prometheus.NewRegistry(), StreamIdleTimeout: 10 * 365 * 24 * time.Hour}
	if cfg.Brokers == nil {
		cfg.Brokers = []string{"unused:9092"}
	}
	if mutate != nil {
		mutate(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *env) produce(t testing.TB, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: e.topic, Balancer: &kafka.Hash{},
		BatchSize: 1000, BatchBytes: 16 << 20, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(msgs) > 0 {
		n := min(len(msgs), 10000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			t.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

// running is a Meter running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(m *Meter) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	return r
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// committed returns the sum of the group's stored next offsets: the number
// of records metered when every partition starts at offset 0.
func (e *env) committed(t testing.TB) int64 {
	t.Helper()
	var n int64
	if err := e.pool.QueryRow(context.Background(),
		`SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = $1`, DefaultGroupID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitCommitted waits until want records are committed; it fails the test
// after a generous deadline, which only a hang reaches.
func (e *env) waitCommitted(t testing.TB, want int64) {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		got := e.committed(t)
		if got == want {
			return
		}
		if got > want {
			t.Fatalf("committed %d records, only %d exist", got, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %d of %d records", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count runs a count(*)-like query returning one int64.
func (e *env) count(t testing.TB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// drive meters recs without Kafka, through the partition worker's build
// and commit path, in batches of size records; offsets are assigned from 0.
func (e *env) drive(t testing.TB, m *Meter, recs []kafka.Message, size int) error {
	t.Helper()
	w := &partitionWorker{m: m, partition: 0, bl: newBuilder(m, 0)}
	for i := range recs {
		recs[i].Topic, recs[i].Partition, recs[i].Offset = m.cfg.Topic, 0, int64(i)
	}
	ctx := context.Background()
	for i := 0; i < len(recs); i += size {
		from, err := e.store.NextOffset(ctx, m.cfg.GroupID, m.cfg.Topic, 0)
		if err != nil {
			return err
		}
		p, stop, err := w.build(ctx, from, recs[i:min(i+size, len(recs))], nil)
		if err != nil {
			return err
		}
		if err := w.commit(ctx, p); err != nil {
			return err
		}
		if stop != nil {
			return stop
		}
	}
	return nil
}

// relays lists a stream's relays, as the API derives them, as
// "seq:request/response" with "-" for none and "!" when unpaired, by seq.
func (e *env) relays(t testing.TB, id [16]byte) []string {
	t.Helper()
	sid := uuid.UUID(id)
	p, err := e.store.ListRelays(context.Background(), ledger.RelayFilter{Scope: ledger.All, StreamID: &sid}, ledger.MaxPageSize, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range p.Items {
		seq := func(v sql.Null[int64]) string {
			if !v.Valid {
				return "-"
			}
			return fmt.Sprint(v.V)
		}
		s := fmt.Sprintf("%d:%s/%s", r.Seq, seq(r.RequestSeq), seq(r.ResponseSeq))
		if r.Pairing == ledger.PairingUnpaired {
			s += "!"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// counter reads a counter's value from a Meter's registry.
func counter(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

func uuidString(id [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
}

// waitMembers waits until the meter's consumer group is stable with n
// members that each hold partitions.
func (e *env) waitMembers(t testing.TB, n int) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(e.brokers...)}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{DefaultGroupID}})
		cancel()
		if err == nil && len(res.Groups) == 1 && res.Groups[0].GroupState == "Stable" && len(res.Groups[0].Members) == n {
			holding := 0
			for _, m := range res.Groups[0].Members {
				for _, tp := range m.MemberAssignments.Topics {
					if len(tp.Partitions) > 0 {
						holding++
						break
					}
				}
			}
			if holding == n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer group never had %d members holding partitions (last: %+v, %v)", n, res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
