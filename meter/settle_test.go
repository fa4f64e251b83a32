package meter

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/chain"
	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/internal/cometsim"
	"github.com/relaymeter/relaymeter/ledger"
)

// fakeNow is a wall clock a test moves.
type fakeNow struct{ ns atomic.Int64 }

func (f *fakeNow) set(t time.Time) { f.ns.Store(t.UnixNano()) }
func (f *fakeNow) now() time.Time  { return time.Unix(0, f.ns.Load()).UTC() }

// settleChain is the tests' chain: blocks of a minute from base, windows
// of two blocks ([12:00, 12:02), [12:02, 12:04), … on base's day), its head
// at whatever now says.
func settleChain(now *fakeNow) (*chain.Clock, ledger.SettlementConfig) {
	g := time.Unix(0, base).UTC()
	c := &chain.Clock{Genesis: g, BlockTime: time.Minute, Now: now.now}
	return c, ledger.SettlementConfig{Source: "clock", Genesis: some(g), BlockTime: time.Minute, SessionBlocks: 2, GraceBlocks: 1}
}

// settling configures a meter to settle on c.
func settling(c Chain, sc ledger.SettlementConfig) func(*Config) {
	return func(cfg *Config) {
		cfg.Chain, cfg.Settlement, cfg.SettleInterval = c, sc, 50*time.Millisecond
	}
}

// settlementTariffs prices service eth (3 units per relay, 2.5% fees): by
// default 0.5 upokt per unit, 2 from 12:02; application B pays 7 always.
func (e *env) settlementTariffs(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := e.store.PutService(ctx, ledger.Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC", ComputeUnitsPerRelay: 3}); err != nil {
		t.Fatal(err)
	}
	at := func(min int) time.Time { return time.Unix(0, base).UTC().Add(time.Duration(min) * time.Minute) }
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO tariffs (service, application, price_per_unit, currency, effective_from) VALUES
			('eth', '', 0.5, 'upokt', '-infinity'), ('eth', '', 2, 'upokt', $1), ('eth', 'B', 7, 'upokt', '-infinity')`, []any{at(2)}},
		{`INSERT INTO service_fees (service, fee_bps, effective_from) VALUES ('eth', 250, '-infinity')`, nil},
	} {
		if _, err := e.pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
}

// at moves g's clock to base + d, minus the millisecond next adds.
func (g *gen) setAt(d time.Duration) { g.at = base + int64(d) - int64(time.Millisecond) }

// settlementTraffic is the tests' traffic, all of service eth:
//   - s1 (application A, supplier X): 4 messages in the first window; 3 in
//     the second, then a request at 12:03:59.999 answered at 12:04:00.001,
//     both in the second (a relay is timed by its request);
//   - s2 (B, X): 2 messages in the first window;
//   - s3 (A, Y): 4 messages in the second window, the last of which the
//     close says never crossed.
//
// Expected, at 3 units per relay and 2.5% fees: window 1: A/X 4 relays, 12
// units × 0.5 = 6 (fee 0.15); B/X 2, 6 × 7 = 42 (1.05); window 2: A/X 5,
// 15 × 2 = 30 (0.75); A/Y 3, 9 × 2 = 18 (0.45).
func settlementTraffic() (s1 *gen, recs []kafka.Message) {
	s1, s2, s3 := newGen(1), newGen(2), newGen(3)
	recs = append(recs, s1.open("eth", "A", "X"), s1.req(), s1.resp(), s1.req(), s1.resp())
	recs = append(recs, s2.open("eth", "B", "X"), s2.req(), s2.resp())
	s1.setAt(2*time.Minute + 30*time.Second)
	recs = append(recs, s1.req(), s1.resp(), s1.req())
	s1.setAt(4*time.Minute - time.Millisecond)
	recs = append(recs, s1.req())
	s1.setAt(4*time.Minute + time.Millisecond)
	recs = append(recs, s1.resp())
	s3.setAt(3 * time.Minute)
	recs = append(recs, s3.open("eth", "A", "Y"), s3.req(), s3.resp(), s3.req(), s3.resp())
	through := func(v uint64) *uint64 { return &v }
	recs = append(recs, s3.next(&event.Event{Body: &event.Event_Closed{Closed: &event.StreamClosed{Reason: "eof",
		MessagesToUpstream: s3.up, BytesToUpstream: s3.upBytes, MessagesToClient: s3.down, BytesToClient: s3.downBytes,
		ForwardedToUpstreamThroughSeq: through(4), ForwardedToClientThroughSeq: through(3)}}}))
	return s1, recs
}

// sessionRows lists the sessions as "start app/service/supplier relays units amount currency", sorted.
func (e *env) sessionRows(t *testing.T) []string {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT start_height, application, service, supplier, relays, units,
		trim_scale(amount)::text, currency FROM sessions ORDER BY 1, 2, 3, 4`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h, r, u int64
		var app, svc, sup, amt, cur string
		if err := rows.Scan(&h, &app, &svc, &sup, &r, &u, &amt, &cur); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %s/%s/%s %d %d %s %s", h, app, svc, sup, r, u, amt, cur))
	}
	return out
}

// balances returns every account's balance.
func (e *env) balances(t *testing.T) map[string]string {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT id FROM accounts`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	out := map[string]string{}
	for _, id := range ids {
		b, err := e.store.Balance(context.Background(), id, ledger.Stream{}.ClosedAt)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = b
	}
	return out
}

// waitSettled waits until the ledger settled through height h.
func (e *env) waitSettled(t *testing.T, h int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for e.count(t, `SELECT settled_through_height FROM settlement_state`) < h {
		if time.Now().After(deadline) {
			t.Fatalf("settled through %d, want %d; findings %s", e.count(t, `SELECT settled_through_height FROM settlement_state`), h, e.findingKinds(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func (e *env) verifyLedger(t *testing.T) ledger.LedgerReport {
	t.Helper()
	r, err := e.store.VerifyLedger(context.Background())
	if err != nil || len(r.Problems) > 0 {
		t.Fatalf("ledger verify: %+v, %v", r, err)
	}
	return r
}

// TestSettleExact meters traffic over two windows through Kafka with two
// meters, both settling (their settlers race for each window), and checks
// the sessions and balances to the last digit: two tariffs over time, an
// application's own price, a fee, a relay across a window boundary, a
// message that never crossed. Then a late relay (a request observed in the
// first window, metered after it settled) is recorded as such and settled,
// at the first window's price, in an adjustment of the next settlement.
// Replaying the log from the start changes nothing.
func TestSettleExact(t *testing.T) {
	e := newEnv(t, 2)
	e.settlementTariffs(t)
	var now fakeNow
	now.set(time.Unix(0, base).Add(10 * time.Minute)) // head 11: windows [1,2] to [9,10] are over
	c, sc := settleChain(&now)
	s1, recs := settlementTraffic()
	e.produce(t, recs...)
	m1, m2 := start(e.meter(t, settling(c, sc))), start(e.meter(t, settling(c, sc)))
	e.waitCommitted(t, int64(len(recs)))
	e.waitSettled(t, 10)
	want := []string{
		"1 A/eth/X 4 12 6 upokt", "1 B/eth/X 2 6 42 upokt",
		"3 A/eth/X 5 15 30 upokt", "3 A/eth/Y 3 9 18 upokt",
	}
	equalLines(t, "sessions", e.sessionRows(t), want)
	wantBalances := map[string]string{
		"application:A:upokt": "-54", "application:B:upokt": "-42",
		"supplier:X:upokt": "76.05", "supplier:Y:upokt": "17.55", "fees:eth:upokt": "2.4",
	}
	if got := e.balances(t); fmt.Sprint(got) != fmt.Sprint(wantBalances) {
		t.Fatalf("balances %v, want %v", got, wantBalances)
	}
	if r := e.verifyLedger(t); r.Transactions != 4 {
		t.Fatalf("%d transactions, want 4 (one per session)", r.Transactions)
	}
	// Settling again, by hand, finds nothing to settle.
	if _, done, err := e.store.SettleNext(context.Background(), ledger.SettleParams{Group: DefaultGroupID, Topic: e.topic,
		Partitions: 2, Head: 11, GraceBlocks: 1}); err != nil || done {
		t.Fatalf("settle again: %v, %v", done, err)
	}

	// A late relay: s1's next request, observed in the first window.
	s1.setAt(time.Minute)
	e.produce(t, s1.req())
	e.waitCommitted(t, int64(len(recs))+1)
	if n := e.count(t, `SELECT count(*) FROM findings WHERE kind = 'late_relay' AND resolved_at IS NULL`); n != 1 {
		t.Fatalf("%d open late_relay findings, want 1 (%s)", n, e.findingKinds(t))
	}
	now.set(time.Unix(0, base).Add(12 * time.Minute)) // head 13: [11,12] is over
	e.waitSettled(t, 12)
	// 1 relay, 3 units at the first window's 0.5: 1.5, fee 0.0375.
	want = append(want, "11 A/eth/X 0 0 0 ")
	equalLines(t, "sessions", e.sessionRows(t), want)
	wantBalances["application:A:upokt"], wantBalances["supplier:X:upokt"], wantBalances["fees:eth:upokt"] = "-55.5", "77.5125", "2.4375"
	if got := e.balances(t); fmt.Sprint(got) != fmt.Sprint(wantBalances) {
		t.Fatalf("balances %v, want %v", got, wantBalances)
	}
	if n := e.count(t, `SELECT count(*) FROM findings f JOIN ledger_transactions t ON t.id = f.transaction_id
		WHERE f.kind = 'late_relay' AND f.resolved_at IS NOT NULL AND t.kind = 'adjustment'`); n != 1 {
		t.Fatalf("late relay not resolved by an adjustment (%s)", e.findingKinds(t))
	}
	if r := e.verifyLedger(t); r.Transactions != 5 {
		t.Fatalf("%d transactions, want 5", r.Transactions)
	}
	m1.stop(t)
	m2.stop(t)

	// Replay the whole log: every event is a duplicate, nothing moves.
	if _, err := e.pool.Exec(context.Background(), `DELETE FROM consumer_offsets`); err != nil {
		t.Fatal(err)
	}
	m3 := start(e.meter(t, settling(c, sc)))
	e.waitCommitted(t, int64(len(recs))+1)
	time.Sleep(300 * time.Millisecond) // a few settler ticks
	m3.stop(t)
	equalLines(t, "sessions after replay", e.sessionRows(t), want)
	if got := e.balances(t); fmt.Sprint(got) != fmt.Sprint(wantBalances) {
		t.Fatalf("balances after replay %v, want %v", got, wantBalances)
	}
	if n := e.count(t, `SELECT count(*) FROM findings WHERE kind = 'late_relay'`); n != 1 {
		t.Fatalf("%d late_relay findings after replay, want 1", n)
	}
	e.verifyLedger(t)
}

// TestSettleCometBFT settles on a simulated CometBFT node (blocks every
// 100 ms, 3 per session): a stream's relays of now land in the sessions of
// the node's windows, each with the session id computed from the node's
// block hash at the window's start, and none is lost or counted twice.
func TestSettleCometBFT(t *testing.T) {
	node := cometsim.Start("pocket-sim", 100*time.Millisecond)
	defer node.Close()
	e := newEnv(t, 1)
	e.settlementTariffs(t)
	c := &chain.CometBFT{URL: node.URL()}
	sc := ledger.SettlementConfig{Source: "cometbft", URL: node.URL(), ChainID: "pocket-sim", BlockTime: 100 * time.Millisecond,
		SessionBlocks: 3, GraceBlocks: 1}
	m := start(e.meter(t, settling(c, sc)))
	defer m.stop(t)
	g := newGen(7)
	g.at = time.Now().UnixNano()
	recs := []kafka.Message{g.open("eth", "A", "X")}
	for range 40 {
		recs = append(recs, g.req(), g.resp())
		g.at += int64(20 * time.Millisecond)
	}
	e.produce(t, recs...)
	e.waitCommitted(t, int64(len(recs)))
	deadline := time.Now().Add(60 * time.Second)
	for e.count(t, `SELECT coalesce(sum(relays), 0) FROM sessions`) < 80 {
		if time.Now().After(deadline) {
			t.Fatalf("settled %d of 80 relays: %v", e.count(t, `SELECT coalesce(sum(relays), 0) FROM sessions`), e.sessionRows(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.count(t, `SELECT coalesce(sum(relays), 0) FROM sessions`); n != 80 {
		t.Fatalf("%d relays settled, want 80", n)
	}
	rows, err := e.pool.Query(context.Background(), `SELECT session_id, start_height FROM sessions`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var h int64
		if err := rows.Scan(&id, &h); err != nil {
			t.Fatal(err)
		}
		b, err := c.Block(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		if want := chain.SessionID(b.Hash, "eth", "A", h); id != want || (h-1)%3 != 0 {
			t.Fatalf("session at %d: id %s, want %s from the node's block hash", h, id, want)
		}
	}
	e.verifyLedger(t)
}
