package audit

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// gen fabricates one stream's events, sealed and chained as an edge would.
type gen struct {
	id    [16]byte
	seq   uint64
	chain [event.ChainSize]byte
	at    int64
	// what the stream carried, for its StreamClosed
	up, upBytes, down, downBytes uint64
}

// base is when the generated traffic happens: a minute boundary, so that
// tests know which usage minute each event falls in.
var base = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func newGen(n int) *gen {
	g := &gen{at: base.UnixNano()}
	g.id[0], g.id[6] = 0x01, 0x70
	g.id[12], g.id[13], g.id[14], g.id[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return g
}

// next seals ev as the stream's next event, step after the previous one.
func (g *gen) next(ev *event.Event, step time.Duration) kafka.Message {
	g.seq++
	g.at += int64(step)
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
		Protocol: event.Protocol_WEBSOCKET_JSONRPC, Service: service, Application: app, Supplier: supplier}}}, time.Millisecond)
}

// msg is a message of direction d step after the previous event.
func (g *gen) msg(d event.Direction, step time.Duration, method string) kafka.Message {
	const wire = 100
	role := event.Role_REQUEST
	if d == event.Direction_UPSTREAM_TO_CLIENT {
		g.down, g.downBytes, role = g.down+1, g.downBytes+wire, event.Role_RESPONSE
	} else {
		g.up, g.upBytes = g.up+1, g.upBytes+wire
	}
	return g.next(&event.Event{Body: &event.Event_Message{Message: &event.Message{Direction: d, Role: role,
		Method: method, WireSize: wire, PayloadSize: 10}}}, step)
}

func (g *gen) req(step time.Duration) kafka.Message {
	return g.msg(event.Direction_CLIENT_TO_UPSTREAM, step, "eth_call")
}
func (g *gen) resp(step time.Duration) kafka.Message {
	return g.msg(event.Direction_UPSTREAM_TO_CLIENT, step, "eth_call")
}

func (g *gen) close() kafka.Message {
	return g.next(&event.Event{Body: &event.Event_Closed{Closed: &event.StreamClosed{Reason: "eof",
		MessagesToUpstream: g.up, BytesToUpstream: g.upBytes, MessagesToClient: g.down, BytesToClient: g.downBytes}}}, time.Millisecond)
}

// env is a migrated database and a Kafka cluster with the events topic.
type env struct {
	pool    *pgxpool.Pool
	store   *ledger.Store
	brokers []string
	n       int64 // records produced
}

func newEnv(t testing.TB, partitions int) *env {
	t.Helper()
	pool, _ := pgtest.DB(t)
	e := &env{pool: pool, store: ledger.New(pool)}
	e.brokers = kafkatest.Start(t, kafkatest.Options{Partitions: partitions, Topics: []string{meter.DefaultTopic}}).Brokers
	return e
}

func (e *env) produce(t testing.TB, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: meter.DefaultTopic, Balancer: &kafka.Hash{},
		BatchSize: 1000, BatchBytes: 16 << 20, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for len(msgs) > 0 {
		n := min(len(msgs), 10000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			t.Fatal(err)
		}
		e.n += int64(n)
		msgs = msgs[n:]
	}
}

// idle is the meter's and the audit's stream idle timeout in tests: the
// traffic is stamped in the past, and a caught-up meter runs on the wall
// clock, so the default hour would close every open stream.
const idle = 10 * 365 * 24 * time.Hour

// meter runs a Meter until every record produced is committed (and, when
// set, until done says so).
func (e *env) meter(t testing.TB, opts ...func(*meter.Config)) {
	t.Helper()
	e.meterUntil(t, nil, opts...)
}

func (e *env) meterUntil(t testing.TB, done func() bool, opts ...func(*meter.Config)) {
	t.Helper()
	cfg := meter.Config{Brokers: e.brokers, Store: e.store, BatchSize: 500, BatchWait: 20 * time.Millisecond,
		RetryBackoff: 50 * time.Millisecond, StreamIdleTimeout: idle}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := meter.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Fatalf("meter: %v", err)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int64
		if err := e.pool.QueryRow(context.Background(),
			`SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == e.n && (done == nil || done()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("meter committed %d of %d records", n, e.n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// audit runs an audit with the test's settings.
func (e *env) audit(t testing.TB, f Filter) *Summary {
	t.Helper()
	sum, err := Run(context.Background(), Config{Brokers: e.brokers, Pool: e.pool, StreamIdleTimeout: idle, Filter: f})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	return sum
}

// exec runs statements on the ledger's database, as a tamperer would.
func (e *env) exec(t testing.TB, sql ...string) {
	t.Helper()
	for _, q := range sql {
		if _, err := e.pool.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func pgxCollectStrings(rows pgx.Rows) ([]string, error) {
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// count runs a query returning one int64.
func (e *env) count(t testing.TB, q string) int64 {
	t.Helper()
	var n int64
	if err := e.pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
