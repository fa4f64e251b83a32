package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/internal/pgtest"
)

func some[T any](v T) sql.Null[T] { return sql.Null[T]{V: v, Valid: true} }

// commitEnv is a migrated database with one service and its policy.
type commitEnv struct {
	pool   *pgxpool.Pool
	s      *Store
	policy int64
}

func newCommitEnv(t *testing.T) *commitEnv {
	t.Helper()
	pool, _ := pgtest.DB(t)
	s := New(pool)
	ctx := context.Background()
	if err := s.PutService(ctx, Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC"}); err != nil {
		t.Fatal(err)
	}
	svcs, _, err := s.Services(ctx)
	if err != nil || len(svcs) != 1 {
		t.Fatalf("services: %v, %v", svcs, err)
	}
	return &commitEnv{pool: pool, s: s, policy: svcs[0].Policy.ID}
}

func (e *commitEnv) count(t *testing.T, q string, args ...any) (n int64) {
	t.Helper()
	if err := e.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

var at = time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC)

func (e *commitEnv) stream(id byte) Stream {
	return Stream{StreamID: uuid.UUID{0x01, 0x90, 6: 0x70, 15: id}, Topic: "t", Partition: 3, Protocol: "P",
		Service: "eth", Application: "a", Supplier: "u", EdgeID: "e", PolicyID: e.policy, ComputeUnits: 2,
		OpenedAt: at, Version: 1, LastSeq: 1, Chain: []byte{1}, LastObservedAt: at}
}

// batch returns a batch from→to that opens stream 9 (or moves it on) with
// one message at seq.
func (e *commitEnv) batch(from, to, seq int64, opened bool) *Batch {
	st := e.stream(9)
	st.LastSeq, st.Version, st.Relays, st.MessagesToUpstream, st.BytesToUpstream = seq, seq-1, 1, 1, 10
	return &Batch{Group: "g", Topic: "t", Partition: 3, From: from, To: to,
		Streams:  []StreamChange{{Stream: st, Opened: opened}},
		Messages: []Message{{StreamID: st.StreamID, Seq: seq, ObservedAt: at, Direction: 1, Role: 1, WireSize: 10, Units: 1}},
		Findings: []Finding{{Kind: "gap", StreamID: some(st.StreamID), Seq: some(seq), Detail: "d"}},
	}
}

// TestCommitFences: the offset moves only from the offset a batch started
// at; a batch from a stale offset (a zombie after a rebalance) writes
// nothing.
func TestCommitFences(t *testing.T) {
	e := newCommitEnv(t)
	ctx := context.Background()
	if off, err := e.s.NextOffset(ctx, "g", "t", 3); err != nil || off != NoOffset {
		t.Fatalf("NextOffset before any batch = %d, %v", off, err)
	}
	if err := e.s.Commit(ctx, e.batch(NoOffset, 10, 2, true)); err != nil {
		t.Fatal(err)
	}
	for _, stale := range []*Batch{e.batch(NoOffset, 10, 3, false), e.batch(5, 12, 3, false), e.batch(11, 12, 3, false)} {
		if err := e.s.Commit(ctx, stale); !errors.Is(err, ErrFenced) {
			t.Fatalf("batch from %d: err = %v, want ErrFenced", stale.From, err)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM messages`) + e.count(t, `SELECT count(*) FROM findings`); n != 2 {
		t.Fatalf("fenced batches wrote rows: %d rows, want 2", n)
	}
	if err := e.s.Commit(ctx, e.batch(10, 20, 3, false)); err != nil {
		t.Fatal(err)
	}
	if off, err := e.s.NextOffset(ctx, "g", "t", 3); err != nil || off != 20 {
		t.Fatalf("NextOffset = %d, %v, want 20", off, err)
	}
	// Usage rolls up from the messages: 2 messages of 1 unit, weight 2.
	if n := e.count(t, `SELECT units * 1000 + messages * 100 + relays FROM usage_minutes`); n != 4202 {
		t.Fatalf("usage units*1000+messages*100+relays = %d, want 4202", n)
	}
}

// TestCommitStreamConflict: a stream is written only over the version it
// was read at, and a new stream only once: a second meter working on the
// same stream fails its whole batch with ErrStreamConflict.
func TestCommitStreamConflict(t *testing.T) {
	e := newCommitEnv(t)
	ctx := context.Background()
	if err := e.s.Commit(ctx, e.batch(NoOffset, 1, 2, true)); err != nil {
		t.Fatal(err)
	}
	// Another partition (offsets of its own) opens the same stream again.
	again := e.batch(NoOffset, 1, 2, true)
	again.Partition = 4
	if err := e.s.Commit(ctx, again); !errors.Is(err, ErrStreamConflict) {
		t.Fatalf("second open: %v, want ErrStreamConflict", err)
	}
	// ... or moves it on from a version it did not read.
	stale := e.batch(NoOffset, 1, 3, false)
	stale.Partition, stale.Streams[0].Version = 4, 7
	if err := e.s.Commit(ctx, stale); !errors.Is(err, ErrStreamConflict) {
		t.Fatalf("stale version: %v, want ErrStreamConflict", err)
	}
	if n := e.count(t, `SELECT count(*) FROM consumer_offsets WHERE kafka_partition = 4`) + e.count(t, `SELECT count(*) FROM messages`); n != 1 {
		t.Fatalf("conflicting batches left rows behind: %d", n)
	}
	if err := e.s.Commit(ctx, e.batch(1, 2, 3, false)); err != nil {
		t.Fatalf("the owner moves on: %v", err)
	}
	if v := e.count(t, `SELECT state_version FROM streams`); v != 2 {
		t.Fatalf("state_version %d, want 2", v)
	}
}

// TestCommitRoundTrip: every column of streams, messages and findings reads
// back as written: NULLs, times to the microsecond (before 1970 and 2000
// too), empty and non-ASCII text, gaps, and a finding detail that carries a
// NUL and invalid UTF-8 (cleaned, not refused).
func TestCommitRoundTrip(t *testing.T) {
	e := newCommitEnv(t)
	ctx := context.Background()
	times := []time.Time{
		time.Date(2026, 5, 1, 10, 0, 30, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(1969, 7, 20, 20, 17, 40, 1000, time.UTC),
	}
	st := e.stream(7)
	st.LastSeq, st.Chain, st.LastObservedAt = 40, []byte("0123456789abcdef0123456789abcdef"), times[2].Truncate(time.Microsecond)
	st.Gaps = []Gap{{From: 5, To: 9, Finding: 5, Prev: []byte("0123456789abcdef0123456789abcdef")}, {From: 20, To: 20, Finding: 12}}
	st.LastRequestSeq, st.LastResponseSeq, st.FirstCounterpartSeq = some[int64](3), some[int64](4), some[int64](2)
	st.PolicyState = []byte("carry")
	st.MessagesToUpstream, st.BytesToUpstream, st.MessagesToClient, st.BytesToClient, st.Relays, st.Duplicates = 1, 2, 3, 4, 5, 6
	st.ClosedAt, st.CloseReason, st.CloseCode, st.Complete = some(times[0].Truncate(time.Microsecond)), some("ünïcode"), some[int32](1000), some(false)
	st.ForwardedToUpstreamSeq, st.ForwardedToClientSeq = some[int64](3), some[int64](40)
	st.ClientAddr, st.UpstreamAddr = "", "ws://node"
	b := &Batch{Group: "g", Topic: "t", Partition: 3, From: NoOffset, To: 3, Streams: []StreamChange{{Stream: st, Opened: true}}}
	for i, ts := range times {
		m := Message{StreamID: st.StreamID, Seq: int64(i + 1), ObservedAt: ts, Direction: int16(i), Role: 5,
			Method: "éth_call", BatchSize: -int32(i), SubscriptionID: "0xsub", WireSize: 1 << 40, PayloadSize: int64(i), Units: 7}
		if i > 0 {
			m.CounterpartSeq = some(int64(i))
		}
		b.Messages = append(b.Messages, m)
	}
	b.Findings = []Finding{
		{Kind: "gap", StreamID: some(st.StreamID), Seq: some[int64](2), Detail: "d1\x00\xff", ObservedAt: some(times[2])},
		{Kind: "quarantined", Topic: some("t"), Partition: some[int32](3), Offset: some[int64](0)},
	}
	if err := e.s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := e.s.Streams(ctx, []uuid.UUID{st.StreamID})
	if err != nil || len(got) != 1 {
		t.Fatalf("streams: %v, %v", got, err)
	}
	g := got[0]
	g.OpenedAt, g.LastObservedAt, g.ClosedAt.V = g.OpenedAt.UTC(), g.LastObservedAt.UTC(), g.ClosedAt.V.UTC()
	g.LastRequestAt.V = g.LastRequestAt.V.UTC()
	// LastRequestAt is not written: it is read, the time of the message
	// at LastRequestSeq (3: the last of times).
	st.LastRequestAt = some(times[2].Truncate(time.Microsecond))
	if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", st) {
		t.Errorf("stream:\n got %+v\nwant %+v", g, st)
	}
	page, err := e.s.ListMessages(ctx, All, st.StreamID, 10, "")
	if err != nil || len(page.Items) != 3 {
		t.Fatalf("messages: %v, %v", page, err)
	}
	for i, m := range page.Items {
		want := b.Messages[i]
		want.ObservedAt = want.ObservedAt.Truncate(time.Microsecond)
		m.ObservedAt = m.ObservedAt.UTC()
		if m != want {
			t.Errorf("message %d:\n got %+v\nwant %+v", i, m, want)
		}
	}
	var findings string
	if err := e.pool.QueryRow(ctx, `SELECT string_agg(concat_ws('|', kind, coalesce(stream_id::text, 'NULL'),
		coalesce(seq::text, 'NULL'), coalesce(topic, 'NULL'), coalesce(kafka_partition::text, 'NULL'),
		coalesce(kafka_offset::text, 'NULL'), detail, coalesce(to_char(observed_at AT TIME ZONE 'UTC',
		'YYYY-MM-DD HH24:MI:SS.US'), 'NULL')), ';' ORDER BY id) FROM findings`).Scan(&findings); err != nil {
		t.Fatal(err)
	}
	const want = "gap|01900000-0000-7000-0000-000000000007|2|NULL|NULL|NULL|d1\uFFFD\uFFFD|1969-07-20 20:17:40.000001;" +
		"quarantined|NULL|NULL|t|3|0||NULL"
	if findings != want {
		t.Fatalf("findings\n got %s\nwant %s", findings, want)
	}
}

// TestCommitTakesBackUncrossed: a close that says messages were recorded
// but never crossed takes their usage back (messages, relays, units,
// bytes), in the minute they were counted, whether they were committed
// before or in the closing batch; the messages stay.
func TestCommitTakesBackUncrossed(t *testing.T) {
	e := newCommitEnv(t)
	ctx := context.Background()
	st := e.stream(5)
	st.Version, st.LastSeq = 1, 3
	msg := func(seq int64, dir int16, minute int, units int64) Message {
		return Message{StreamID: st.StreamID, Seq: seq, ObservedAt: at.Add(time.Duration(minute) * time.Minute),
			Direction: dir, Role: 1, WireSize: 100 * seq, Units: units}
	}
	// seq 2 up, 3 down in minute 0; seq 4 up (3 units) in minute 1.
	b1 := &Batch{Group: "g", Topic: "t", Partition: 3, From: NoOffset, To: 3, Streams: []StreamChange{{Stream: st, Opened: true}},
		Messages: []Message{msg(2, 1, 0, 1), msg(3, 2, 0, 1)}}
	if err := e.s.Commit(ctx, b1); err != nil {
		t.Fatal(err)
	}
	st.Version, st.LastSeq = 2, 6
	st.LastRequestSeq, st.LastResponseSeq = some[int64](4), some[int64](5)
	// The close: the request side crossed up to 2 (so 4 did not), the
	// response side up to 3 (so 5, in this batch, did not).
	st.ClosedAt, st.ForwardedToUpstreamSeq, st.ForwardedToClientSeq = some(at), some[int64](2), some[int64](3)
	b2 := &Batch{Group: "g", Topic: "t", Partition: 3, From: 3, To: 6, Streams: []StreamChange{{Stream: st, Closed: true}},
		Messages: []Message{msg(4, 1, 1, 3), msg(5, 2, 1, 1)}}
	if err := e.s.Commit(ctx, b2); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := e.pool.QueryRow(ctx, `SELECT string_agg(concat_ws('/', messages, relays, units, bytes), ' ' ORDER BY minute)
		FROM usage_minutes`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "2/2/4/500 0/0/0/0"; got != want {
		t.Fatalf("usage = %q, want %q", got, want)
	}
	if n := e.count(t, `SELECT count(*) FROM messages`); n != 4 {
		t.Fatalf("%d messages, want 4: uncrossed messages stay", n)
	}
	p, err := e.s.ListRelays(ctx, RelayFilter{Scope: All}, 10, "")
	if err != nil || len(p.Items) != 2 {
		t.Fatalf("relays %+v, %v: want the 2 that crossed", p.Items, err)
	}
}

// TestCommitResolvesAndQuarantines: a resolution marks the named open
// finding (even one the same batch records), and a quarantined record is
// stored whole once, however often it is set aside.
func TestCommitResolvesAndQuarantines(t *testing.T) {
	e := newCommitEnv(t)
	ctx := context.Background()
	b := e.batch(NoOffset, 1, 2, true)
	b.Findings = append(b.Findings, Finding{Kind: "gap", StreamID: some(b.Streams[0].StreamID), Seq: some[int64](7), Detail: "other"})
	b.Resolved = []Resolution{{Kind: "gap", StreamID: b.Streams[0].StreamID, Seq: 2}}
	q := Quarantined{Topic: "t", Partition: 3, Offset: 0, Key: []byte("k"), Value: []byte{0, 1, 2},
		Headers: []Header{{Key: "h", Value: []byte{0xff}}}, Time: at, Error: "bad \x00 record"}
	b.Quarantined = []Quarantined{q}
	if err := e.s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	b2 := e.batch(1, 2, 3, false)
	b2.Findings, b2.Quarantined = nil, []Quarantined{q, {Topic: "t", Partition: 3, Offset: 1, Time: at, Error: "second"}}
	if err := e.s.Commit(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, `SELECT count(*) FROM findings WHERE resolved_at IS NOT NULL AND seq = 2`); n != 1 {
		t.Fatalf("resolved findings at seq 2: %d", n)
	}
	if n := e.count(t, `SELECT count(*) FROM findings WHERE resolved_at IS NULL`); n != 1 {
		t.Fatalf("open findings: %d, want 1", n)
	}
	p, err := e.s.ListQuarantine(ctx, 1, "")
	if err != nil || len(p.Items) != 1 || !p.HasNextPage {
		t.Fatalf("quarantine page 1: %+v, %v", p, err)
	}
	r := p.Items[0]
	if string(r.Key) != "k" || string(r.Value) != "\x00\x01\x02" || len(r.Headers) != 1 || r.Headers[0].Key != "h" ||
		string(r.Headers[0].Value) != "\xff" || !r.Time.Equal(at) || r.Error != "bad \uFFFD record" || r.Offset != 0 {
		t.Fatalf("quarantined: %+v", r)
	}
	p, err = e.s.ListQuarantine(ctx, 10, p.EndCursor())
	if err != nil || len(p.Items) != 1 || p.HasNextPage || p.Items[0].Offset != 1 {
		t.Fatalf("quarantine page 2: %+v, %v", p, err)
	}
}

// TestPutServicePolicies: a service points at immutable policy versions
// over time: new parameters are a new version, in force from the next
// minute boundary, and no row is ever updated.
func TestPutServicePolicies(t *testing.T) {
	pool, _ := pgtest.DB(t)
	s, ctx := New(pool), context.Background()
	put := func(version int32, params string) error {
		return s.PutService(ctx, Service{ID: "x", Protocol: "WEBSOCKET_JSONRPC",
			Policy: Policy{Name: "bytes", Version: version, Params: json.RawMessage(params)}, ComputeUnitsPerRelay: 4})
	}
	if err := put(1, `{"block": 100}`); err != nil {
		t.Fatal(err)
	}
	// The same parameters, written differently, are the same version.
	if err := put(1, `{ "block":100 }`); err != nil {
		t.Fatal(err)
	}
	if err := put(1, `{"block": 200}`); err != nil {
		t.Fatal(err)
	}
	if err := put(2, `{"block": 300}`); !errors.Is(err, ErrChangeTooSoon) {
		t.Fatalf("a second change within the minute: %v, want ErrChangeTooSoon", err)
	}
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM policies WHERE name = 'bytes'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d bytes policies, %v; want 2", n, err)
	}
	svcs, now, err := s.Services(ctx)
	if err != nil || len(svcs) != 1 || svcs[0].ComputeUnitsPerRelay != 4 || len(svcs[0].History) != 2 {
		t.Fatalf("services: %+v, %v", svcs, err)
	}
	h := svcs[0].History
	next := now.Truncate(time.Minute).Add(time.Minute)
	if h[0].EffectiveFrom.Valid || !h[1].EffectiveFrom.Valid || !h[1].EffectiveFrom.V.Equal(next) {
		t.Fatalf("history %+v: want the first version since ever, the second from %v", h, next)
	}
	if !strings.Contains(string(svcs[0].Policy.Params), "100") {
		t.Fatalf("in force now: %s, want the first version until the next minute", svcs[0].Policy.Params)
	}
	for at, want := range map[time.Time]string{now: "100", next.Add(-time.Nanosecond): "100", next: "200", next.Add(time.Hour): "200"} {
		if p, ok := InForce(h, at); !ok || !strings.Contains(string(p.Params), want) {
			t.Errorf("in force at %v: %s, want %s", at, p.Params, want)
		}
	}
	p, err := s.Policy(ctx, h[1].Policy.ID)
	if err != nil || p.Name != "bytes" || p.Version != 1 || !strings.Contains(string(p.Params), "200") {
		t.Fatalf("Policy: %+v, %v", p, err)
	}
	var pgErr *pgconn.PgError
	_, err = pool.Exec(ctx, `UPDATE policies SET params = '{}'`)
	if !errors.As(err, &pgErr) || !strings.Contains(pgErr.Message, "immutable") {
		t.Fatalf("updating a policy: %v, want refused", err)
	}
	_, err = pool.Exec(ctx, `UPDATE service_policies SET policy_id = policy_id`)
	if !errors.As(err, &pgErr) || !strings.Contains(pgErr.Message, "append-only") {
		t.Fatalf("updating a service's version: %v, want refused", err)
	}
}
