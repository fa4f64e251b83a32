package ledger

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/google/uuid"

	"github.com/relaymeter/relaymeter/chain"
)

var settleSeed = flag.Uint64("settle.seed", 0, "seed of TestSettleProperty (0: random)")

// settleEnv is a migrated database, a clock chain of one-minute blocks from
// genesis, two blocks per window, and one partition the tests commit to.
type settleEnv struct {
	*commitEnv
	clock  *chain.Clock
	offset int64
	policy int64
}

var genesis = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

func newSettleEnv(t *testing.T) *settleEnv {
	e := &settleEnv{commitEnv: newCommitEnv(t), clock: &chain.Clock{Genesis: genesis, BlockTime: time.Minute}, offset: NoOffset}
	e.policy = e.commitEnv.policy
	return e
}

// msg is a message a test commits: when, on which side, how many units.
type msg struct {
	at       time.Duration // after genesis
	response bool
	units    int64
	notify   bool // a response-side notification rather than an answer
}

// streamSpec is a stream a test commits at once: its unit and messages,
// and, when closed, through which seq each side crossed (0: all).
type streamSpec struct {
	n                          int
	app, sup                   string
	weight                     int64
	msgs                       []msg
	relayAt                    []time.Time // filled by commit: each message's RelayAt
	forwardedUp, forwardedDown *int64
}

// commit stores s in one batch, timing each relay as the meter does: a
// response by the latest request before it.
func (e *settleEnv) commit(t *testing.T, s *streamSpec, clock time.Time) {
	t.Helper()
	st := Stream{StreamID: uuid.UUID{0x01, 0x90, 6: 0x70, 14: byte(s.n >> 8), 15: byte(s.n)}, Topic: "t", Partition: 0, Protocol: "P",
		Service: "eth", Application: s.app, Supplier: s.sup, EdgeID: "e", PolicyID: e.policy, ComputeUnits: s.weight,
		OpenedAt: genesis, Version: 1, Chain: []byte{1}, LastObservedAt: genesis}
	b := &Batch{Group: "g", Topic: "t", Partition: 0, From: e.offset, To: e.offset + int64(len(s.msgs)) + 1, Clock: clock}
	if e.offset == NoOffset {
		b.To = int64(len(s.msgs)) + 1
	}
	var lastReq int64
	var lastReqAt time.Time
	s.relayAt = nil
	for i, m := range s.msgs {
		seq := int64(i + 2)
		at := genesis.Add(m.at)
		dir := int16(1)
		msg := Message{StreamID: st.StreamID, Seq: seq, ObservedAt: at, Direction: 1, Role: 1, WireSize: 10, Units: m.units}
		if m.response {
			dir, msg.Role = 2, 2
			if m.notify {
				msg.Role = 3
			}
			if lastReq > 0 {
				msg.CounterpartSeq = some(lastReq)
			}
		} else {
			lastReq, lastReqAt = seq, at
		}
		msg.Direction = dir
		msg.RelayAt = RelayTime(Answers(dir, msg.Role), at, msg.CounterpartSeq.Valid, lastReqAt)
		s.relayAt = append(s.relayAt, msg.RelayAt)
		b.Messages = append(b.Messages, msg)
		st.Relays += m.units
		st.LastSeq = seq
	}
	if s.forwardedUp != nil || s.forwardedDown != nil {
		st.ClosedAt, st.CloseReason = some(genesis.Add(s.msgs[len(s.msgs)-1].at)), some("eof")
		if s.forwardedUp != nil {
			st.ForwardedToUpstreamSeq = some(*s.forwardedUp)
		}
		if s.forwardedDown != nil {
			st.ForwardedToClientSeq = some(*s.forwardedDown)
		}
	}
	b.Streams = []StreamChange{{Stream: st, Opened: true, Closed: st.ClosedAt.Valid}}
	if err := e.s.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	e.offset = b.To
}

// windows stores the windows from the one of height 1 up to the one
// containing minute last, all ended.
func (e *settleEnv) windows(t *testing.T, last time.Duration) {
	t.Helper()
	for w := chain.WindowOf(1, 2); ; w = w.Next() {
		s, _ := e.clock.Block(context.Background(), w.Start)
		end, _ := e.clock.Block(context.Background(), w.End+1)
		if err := e.s.AddChainSession(context.Background(), ChainSession{StartHeight: w.Start, EndHeight: w.End,
			StartsAt: s.Time, EndsAt: some(end.Time), StartHash: s.Hash}); err != nil {
			t.Fatal(err)
		}
		if !end.Time.Before(genesis.Add(last)) {
			return
		}
	}
}

func (e *settleEnv) params() SettleParams {
	return SettleParams{Group: "g", Topic: "t", Partitions: 1, Head: 1 << 40, GraceBlocks: 1, Now: genesis.Add(24 * time.Hour)}
}

// settleAll settles every window that is over.
func (e *settleEnv) settleAll(t *testing.T) int {
	t.Helper()
	n := 0
	for {
		_, done, err := e.s.SettleNext(context.Background(), e.params())
		if err != nil {
			t.Fatal(err)
		}
		if !done {
			return n
		}
		n++
	}
}

// ledgerState is everything settlement writes, as text.
func (e *settleEnv) ledgerState(t *testing.T) string {
	t.Helper()
	var out string
	for _, q := range []string{
		`SELECT coalesce(string_agg(concat_ws(' ', start_height, application, supplier, relays, units, trim_scale(amount), currency), '; '
			ORDER BY start_height, application, supplier), '') FROM sessions`,
		`SELECT coalesce(string_agg(concat_ws(' ', seq, kind, encode(hash, 'hex')), '; ' ORDER BY seq), '') FROM ledger_transactions`,
		`SELECT coalesce(string_agg(concat_ws(' ', transaction_seq, account, trim_scale(amount)), '; ' ORDER BY transaction_seq, account), '') FROM ledger_entries`,
		`SELECT coalesce(string_agg(concat_ws(' ', kind, seq, resolved_at IS NOT NULL, transaction_id), '; ' ORDER BY id), '') FROM findings`,
		`SELECT concat_ws(' ', settled_through_height, settled_until) FROM settlement_state`,
	} {
		var s string
		if err := e.pool.QueryRow(context.Background(), q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out += s + "\n"
	}
	return out
}

var errInjected = errors.New("injected failure")

// TestSettleFailsAtEachStep stands in for a crash during settlement: the
// settlement transaction fails after each of its steps in turn (the lock,
// the totals, the sessions, the transactions, the late relays' findings,
// the settled end), and each time nothing of it is left; the settlement
// that then succeeds writes exactly what one undisturbed settlement writes.
// It runs for a first window, and for a second one that also adjusts a late
// relay.
func TestSettleFailsAtEachStep(t *testing.T) {
	steps := []string{"lock", "totals", "sessions", "transactions", "findings", "state"}
	run := func(t *testing.T, fail bool) (first, second string) {
		e := newSettleEnv(t)
		ctx := context.Background()
		if _, err := e.pool.Exec(ctx, `INSERT INTO tariffs (service, application, price_per_unit, currency, effective_from)
			VALUES ('eth', '', 0.3, 'upokt', '-infinity'); INSERT INTO service_fees VALUES ('eth', 1000, '-infinity')`); err != nil {
			t.Fatal(err)
		}
		e.windows(t, 4*time.Minute)
		e.commit(t, &streamSpec{n: 1, app: "A", sup: "X", weight: 2, msgs: []msg{{10 * time.Second, false, 1, false},
			{20 * time.Second, true, 1, false}, {2*time.Minute + 5*time.Second, false, 3, false}}}, genesis.Add(time.Hour))
		try := func(window int) string {
			before := e.ledgerState(t)
			if fail {
				for _, step := range steps {
					p := e.params()
					p.failAt = func(s string) error {
						if s == step {
							return errInjected
						}
						return nil
					}
					if _, _, err := e.s.SettleNext(ctx, p); !errors.Is(err, errInjected) {
						t.Fatalf("window %d, failing after %s: %v", window, step, err)
					}
					if after := e.ledgerState(t); after != before {
						t.Fatalf("window %d: a settlement that failed after %s left:\n%s\nwas\n%s", window, step, after, before)
					}
				}
			}
			if _, done, err := e.s.SettleNext(ctx, e.params()); err != nil || !done {
				t.Fatalf("window %d: %v, %v", window, done, err)
			}
			return e.ledgerState(t)
		}
		first = try(1)
		// A late relay of window 1, then window 2 (which adjusts it).
		e.commit(t, &streamSpec{n: 2, app: "A", sup: "X", weight: 2, msgs: []msg{{30 * time.Second, false, 5, false}}}, genesis.Add(time.Hour))
		second = try(2)
		if r, err := e.s.VerifyLedger(ctx); err != nil || len(r.Problems) > 0 || r.Transactions != 3 {
			t.Fatalf("verify: %+v, %v", r, err)
		}
		return first, second
	}
	want1, want2 := run(t, false)
	got1, got2 := run(t, true)
	if got1 != want1 || got2 != want2 {
		t.Fatalf("after failures:\n%s%s\nundisturbed:\n%s%s", got1, got2, want1, want2)
	}
	// Window 1: 2 relays × 2 units × 0.3 = 1.2, fee 0.12; window 2: 3
	// relays, 1.8, and the late relay's adjustment: 5 × 2 × 0.3 = 3.
	for _, w := range []string{"1 A X 2 4 1.2 upokt", "3 A X 3 6 1.8 upokt", "3 adjustment", "3 application:A:upokt -3",
		"3 supplier:X:upokt 2.7", "3 fees:eth:upokt 0.3", "late_relay 2 t "} {
		if !strings.Contains(want1+want2, w) {
			t.Errorf("ledger lacks %q:\n%s%s", w, want1, want2)
		}
	}
}

// tariffRow is a tariff the property test stores, as the oracle reads it.
type tariffRow struct {
	app, price, currency string
	from                 time.Duration // after genesis; <0: since ever
}

type feeRow struct {
	bps  int64
	from time.Duration
}

// TestSettleProperty settles random traffic (streams of random applications
// and suppliers, messages at random times over several windows, some closes
// that say what never crossed) under random tariffs (default and
// per-application, changing price and currency over time) and fees, and
// checks against an oracle computed here from the same inputs: every
// session's relays, units and amount, and every account's balance, which
// is the sum of its entries over the sessions' amounts; the ledger
// verifies (each transaction sums to zero, the chain is intact). Then late
// relays of the settled windows are adjusted, and what each application
// paid is still the exact sum of its relays at their windows' prices.
func TestSettleProperty(t *testing.T) {
	seed := *settleSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (rerun with -settle.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := range 3 {
		t.Run(fmt.Sprint(round), func(t *testing.T) { settleProperty(t, rng) })
	}
}

func settleProperty(t *testing.T, rng *rand.Rand) {
	e := newSettleEnv(t)
	ctx := context.Background()
	span := time.Duration(4+rng.IntN(8)) * 2 * time.Minute // whole windows
	price := func() string {
		return fmt.Sprintf("%d.%018d", rng.IntN(3), rng.Int64N(1e18))
	}
	currencies := []string{"upokt", "USD"}
	var tariffs []tariffRow
	for _, app := range []string{"", "A"} {
		n := 1 + rng.IntN(3)
		if app == "A" {
			n = rng.IntN(3)
		}
		for i := range n {
			from := time.Duration(-1)
			if i > 0 {
				from = time.Duration(rng.IntN(int(span/time.Minute))) * time.Minute
			}
			tariffs = append(tariffs, tariffRow{app: app, price: price(), currency: currencies[rng.IntN(2)], from: from})
		}
	}
	var fees []feeRow
	for i := range rng.IntN(3) {
		from := time.Duration(-1)
		if i > 0 {
			from = time.Duration(rng.Int64N(int64(span)))
		}
		fees = append(fees, feeRow{bps: rng.Int64N(10001), from: from})
	}
	for _, tr := range tariffs {
		from := "-infinity"
		if tr.from >= 0 {
			from = genesis.Add(tr.from).Format(time.RFC3339Nano)
		}
		if _, err := e.pool.Exec(ctx, `INSERT INTO tariffs (service, application, price_per_unit, currency, effective_from)
			VALUES ('eth', $1, $2::numeric, $3, $4::timestamptz) ON CONFLICT DO NOTHING`, tr.app, tr.price, tr.currency, from); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range fees {
		from := "-infinity"
		if f.from >= 0 {
			from = genesis.Add(f.from).Format(time.RFC3339Nano)
		}
		if _, err := e.pool.Exec(ctx, `INSERT INTO service_fees VALUES ('eth', $1, $2::timestamptz) ON CONFLICT DO NOTHING`, f.bps, from); err != nil {
			t.Fatal(err)
		}
	}
	// The oracle's view of the stored rows (a tariff's ON CONFLICT may have
	// dropped one: read them back).
	tariffs, fees = e.readPricing(t)

	var streams []*streamSpec
	for n := range 3 + rng.IntN(6) {
		if s := randomStream(rng, n+1, span); s != nil {
			streams = append(streams, s)
			e.commit(t, s, genesis.Add(span+time.Hour))
		}
	}
	if len(streams) == 0 {
		return
	}
	e.windows(t, span)
	e.settleAll(t)

	// The oracle.
	type key struct {
		start    int64
		app, sup string
	}
	type tot struct{ relays, units int64 }
	sums := map[key]*tot{}
	for _, s := range streams {
		for i, m := range s.msgs {
			if !s.crossed(i) || m.units == 0 {
				continue
			}
			w := chain.WindowOf(e.clock.HeightAt(s.relayAt[i]), 2)
			k := key{w.Start, s.app, s.sup}
			if sums[k] == nil {
				sums[k] = &tot{}
			}
			sums[k].relays += m.units
			sums[k].units += m.units * s.weight
		}
	}
	var want []string
	balances := map[string]*apd.Decimal{}
	credit := func(account, amount string) {
		if amount == "0" {
			return
		}
		d, _, _ := apd.NewFromString(amount)
		if balances[account] == nil {
			balances[account] = new(apd.Decimal)
		}
		decimalContext.Add(balances[account], balances[account], d)
	}
	for k, v := range sums {
		start := genesis.Add(time.Duration(k.start-1) * time.Minute)
		tr, ok := tariffAt(tariffs, k.app, start)
		amount, cur := "0", ""
		if ok {
			split, err := Payout(Line{Units: v.units, Price: tr.price, FeeBps: feeAt(fees, start)})
			if err != nil {
				t.Fatal(err)
			}
			amount, cur = split.Gross, tr.currency
			credit(AccountID(AccountApplication, k.app, cur), negate(split.Gross))
			credit(AccountID(AccountSupplier, k.sup, cur), split.Supplier)
			credit(AccountID(AccountFees, "eth", cur), split.Fee)
		}
		want = append(want, fmt.Sprintf("%d %s %s %d %d %s %s", k.start, k.app, k.sup, v.relays, v.units, amount, cur))
	}
	sort.Strings(want)
	var got []string
	for _, row := range strings.Split(strings.Split(e.ledgerState(t), "\n")[0], "; ") {
		if row != "" {
			got = append(got, strings.TrimSpace(row))
		}
	}
	sort.Strings(got)
	for i := range want {
		want[i] = strings.TrimSpace(want[i])
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sessions:\n%s\nwant (oracle):\n%s\ntariffs %+v fees %+v", strings.Join(got, "\n"), strings.Join(want, "\n"), tariffs, fees)
	}
	for account, want := range balances {
		got, err := e.s.Balance(ctx, account, Stream{}.ClosedAt)
		if err != nil || got != canonical(want) {
			t.Errorf("balance of %s = %s, %v; want %s", account, got, err, canonical(want))
		}
	}
	var accounts int
	if err := e.pool.QueryRow(ctx, `SELECT count(DISTINCT account) FROM ledger_entries`).Scan(&accounts); err != nil || accounts != len(balances) {
		t.Errorf("%d accounts with entries, the oracle has %d (%v)", accounts, len(balances), err)
	}
	if r, err := e.s.VerifyLedger(ctx); err != nil || len(r.Problems) > 0 {
		t.Fatalf("verify: %+v, %v", r, err)
	}
	// Settling again posts nothing.
	before := e.ledgerState(t)
	if e.settleAll(t) != 0 || e.ledgerState(t) != before {
		t.Fatal("a second settlement changed the ledger")
	}

	// Late relays: streams of the settled windows metered after them, then
	// two more windows. Each is adjusted in the next settlement at its own
	// window's price: what every application paid is the exact sum of its
	// crossed relays priced at their windows, whichever transaction
	// carried them, and suppliers and fees got exactly that.
	for n := range 1 + rng.IntN(4) {
		if s := randomStream(rng, 100+n, span); s != nil {
			streams = append(streams, s)
			e.commit(t, s, genesis.Add(span+time.Hour))
		}
	}
	e.windows(t, span+4*time.Minute)
	e.settleAll(t)
	if n := e.count(t, `SELECT count(*) FROM findings WHERE kind = 'late_relay' AND resolved_at IS NULL`); n != 0 {
		t.Fatalf("%d late relays not adjusted", n)
	}
	paid, received := map[string]*apd.Decimal{}, map[string]*apd.Decimal{}
	add := func(m map[string]*apd.Decimal, k, v string) {
		d, _, _ := apd.NewFromString(v)
		if m[k] == nil {
			m[k] = new(apd.Decimal)
		}
		decimalContext.Add(m[k], m[k], d)
	}
	for _, s := range streams {
		for i, m := range s.msgs {
			if !s.crossed(i) || m.units == 0 {
				continue
			}
			w := chain.WindowOf(e.clock.HeightAt(s.relayAt[i]), 2)
			tr, ok := tariffAt(tariffs, s.app, genesis.Add(time.Duration(w.Start-1)*time.Minute))
			if !ok {
				continue
			}
			split, err := Payout(Line{Units: m.units * s.weight, Price: tr.price})
			if err != nil {
				t.Fatal(err)
			}
			add(paid, AccountID(AccountApplication, s.app, tr.currency), negate(split.Gross))
			add(received, tr.currency, split.Gross)
		}
	}
	for account, want := range paid {
		if got, err := e.s.Balance(ctx, account, Stream{}.ClosedAt); err != nil || got != canonical(want) {
			t.Errorf("with late relays, %s paid %s, %v; want %s", account, got, err, canonical(want))
		}
	}
	for cur, want := range received {
		var got string
		if err := e.pool.QueryRow(ctx, `SELECT coalesce(trim_scale(sum(e.amount)), 0)::text FROM ledger_entries e
			JOIN accounts a ON a.id = e.account WHERE a.kind <> 'application' AND a.currency = $1`, cur).Scan(&got); err != nil || got != canonical(want) {
			t.Errorf("with late relays, suppliers and fees received %s %s, %v; want %s", got, cur, err, canonical(want))
		}
	}
	if r, err := e.s.VerifyLedger(ctx); err != nil || len(r.Problems) > 0 {
		t.Fatalf("verify: %+v, %v", r, err)
	}
}

// randomStream returns a stream of random messages between 0 and span, or
// nil when it has none; a third of them close saying which messages of each
// side crossed.
func randomStream(rng *rand.Rand, n int, span time.Duration) *streamSpec {
	s := &streamSpec{n: n, app: []string{"A", "B"}[rng.IntN(2)], sup: []string{"X", "Y"}[rng.IntN(2)], weight: 1 + rng.Int64N(4)}
	at := time.Duration(rng.Int64N(int64(span / 2)))
	for range 1 + rng.IntN(30) {
		at += time.Duration(rng.Int64N(int64(20 * time.Second)))
		if at >= span {
			break
		}
		s.msgs = append(s.msgs, msg{at: at, response: rng.IntN(2) == 0, units: rng.Int64N(4)})
	}
	if len(s.msgs) == 0 {
		return nil
	}
	if rng.IntN(3) == 0 {
		up, down := int64(1+rng.IntN(len(s.msgs)+1)), int64(1+rng.IntN(len(s.msgs)+1))
		s.forwardedUp, s.forwardedDown = &up, &down
	}
	return s
}

// crossed reports whether message i of s crossed the edge.
func (s *streamSpec) crossed(i int) bool {
	seq := int64(i + 2)
	if s.msgs[i].response && s.forwardedDown != nil {
		return seq <= *s.forwardedDown
	}
	if !s.msgs[i].response && s.forwardedUp != nil {
		return seq <= *s.forwardedUp
	}
	return true
}

func (e *settleEnv) readPricing(t *testing.T) ([]tariffRow, []feeRow) {
	t.Helper()
	ctx := context.Background()
	rows, err := e.pool.Query(ctx, `SELECT application, price_per_unit::text, currency,
		CASE WHEN effective_from = '-infinity' THEN -1 ELSE (extract(epoch FROM effective_from - $1) * 1e9)::bigint END FROM tariffs`, genesis)
	if err != nil {
		t.Fatal(err)
	}
	var ts []tariffRow
	for rows.Next() {
		var r tariffRow
		var from int64
		if err := rows.Scan(&r.app, &r.price, &r.currency, &from); err != nil {
			t.Fatal(err)
		}
		r.from = time.Duration(from)
		ts = append(ts, r)
	}
	rows, err = e.pool.Query(ctx, `SELECT fee_bps, CASE WHEN effective_from = '-infinity' THEN -1
		ELSE (extract(epoch FROM effective_from - $1) * 1e9)::bigint END FROM service_fees`, genesis)
	if err != nil {
		t.Fatal(err)
	}
	var fs []feeRow
	for rows.Next() {
		var r feeRow
		var from int64
		if err := rows.Scan(&r.bps, &from); err != nil {
			t.Fatal(err)
		}
		r.from = time.Duration(from)
		fs = append(fs, r)
	}
	return ts, fs
}

// tariffAt is the oracle's tariff in force for app at t: its own latest
// from at or before t, else the default's.
func tariffAt(ts []tariffRow, app string, t time.Time) (tariffRow, bool) {
	for _, a := range []string{app, ""} {
		var best tariffRow
		found := false
		for _, r := range ts {
			if r.app == a && (r.from < 0 || !genesis.Add(r.from).After(t)) && (!found || r.from > best.from) {
				best, found = r, true
			}
		}
		if found {
			return best, true
		}
	}
	return tariffRow{}, false
}

func feeAt(fs []feeRow, t time.Time) int64 {
	var best feeRow
	found := false
	for _, r := range fs {
		if (r.from < 0 || !genesis.Add(r.from).After(t)) && (!found || r.from > best.from) {
			best, found = r, true
		}
	}
	return best.bps
}

// TestSettleTakesBackUncrossed: a close that says a settled message never
// crossed the edge records uncrossed_after_settlement, and the next
// settlement takes its relays back in a negative adjustment, at the price
// they were settled at; a second close of the stream takes nothing back
// twice.
func TestSettleTakesBackUncrossed(t *testing.T) {
	e := newSettleEnv(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO tariffs (service, application, price_per_unit, currency, effective_from)
		VALUES ('eth', '', 0.25, 'upokt', '-infinity'), ('eth', '', 1, 'upokt', '2026-05-01 10:02:00+00')`); err != nil {
		t.Fatal(err)
	}
	e.windows(t, 4*time.Minute)
	s := &streamSpec{n: 1, app: "A", sup: "X", weight: 2, msgs: []msg{{10 * time.Second, false, 1, false}, {20 * time.Second, true, 3, false}}}
	e.commit(t, s, genesis.Add(time.Hour))
	if _, done, err := e.s.SettleNext(ctx, e.params()); err != nil || !done {
		t.Fatalf("settle: %v, %v", done, err)
	}
	// The close: the response (seq 3) never reached the client.
	closeStream := func() {
		st := Stream{StreamID: uuid.UUID{0x01, 0x90, 6: 0x70, 15: 1}, Topic: "t", Partition: 0, Protocol: "P", Service: "eth",
			Application: "A", Supplier: "X", EdgeID: "e", PolicyID: e.policy, ComputeUnits: 2, OpenedAt: genesis, Chain: []byte{1},
			LastObservedAt: genesis.Add(3 * time.Minute), LastSeq: 4, Relays: 4, ClosedAt: some(genesis.Add(3 * time.Minute)),
			CloseReason: some("eof"), ForwardedToUpstreamSeq: some(int64(2)), ForwardedToClientSeq: some(int64(2)),
			LastRequestSeq: some(int64(2)), LastResponseSeq: some(int64(3))}
		var v int64
		if err := e.pool.QueryRow(ctx, `SELECT state_version FROM streams WHERE stream_id = $1`, st.StreamID).Scan(&v); err != nil {
			t.Fatal(err)
		}
		st.Version = v + 1
		b := &Batch{Group: "g", Topic: "t", Partition: 0, From: e.offset, To: e.offset + 1, Clock: genesis.Add(time.Hour),
			Streams: []StreamChange{{Stream: st, Closed: true}}}
		if err := e.s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		e.offset = b.To
	}
	closeStream()
	if n := e.count(t, `SELECT count(*) FROM findings WHERE kind = 'uncrossed_after_settlement' AND seq = 3`); n != 1 {
		t.Fatalf("%d uncrossed_after_settlement findings for seq 3, want 1", n)
	}
	if _, done, err := e.s.SettleNext(ctx, e.params()); err != nil || !done {
		t.Fatalf("settle: %v, %v", done, err)
	}
	// Window 1: 4 relays, 8 units × 0.25 = 2; taken back in window 2:
	// 3 relays, 6 units at window 1's 0.25 = 1.5.
	st := e.ledgerState(t)
	for _, w := range []string{"1 A X 4 8 2 upokt", "2 adjustment", "2 application:A:upokt 1.5", "2 supplier:X:upokt -1.5",
		"uncrossed_after_settlement 3 t "} {
		if !strings.Contains(st, w) {
			t.Errorf("ledger lacks %q:\n%s", w, st)
		}
	}
	if b, err := e.s.Balance(ctx, "supplier:X:upokt", Stream{}.ClosedAt); err != nil || b != "0.5" {
		t.Fatalf("supplier balance %s, %v; want 0.5", b, err)
	}
	closeStream() // the close again (a second StreamClosed)
	if n := e.count(t, `SELECT count(*) FROM findings WHERE kind = 'uncrossed_after_settlement'`); n != 1 {
		t.Fatalf("%d uncrossed_after_settlement findings after a second close, want 1", n)
	}
	if r, err := e.s.VerifyLedger(ctx); err != nil || len(r.Problems) > 0 {
		t.Fatalf("verify: %+v, %v", r, err)
	}
}

// TestSettleNotificationsByOwnTime: a subscription's notifications answer
// no request, so each is settled in the window it arrived in, not in its
// stream's last request's (else every notification after that window
// settled would be a late relay); an answer still goes with its request.
func TestSettleNotificationsByOwnTime(t *testing.T) {
	e := newSettleEnv(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO tariffs (service, application, price_per_unit, currency, effective_from)
		VALUES ('eth', '', 1, 'upokt', '-infinity')`); err != nil {
		t.Fatal(err)
	}
	e.windows(t, 6*time.Minute)
	s := &streamSpec{n: 1, app: "A", sup: "X", weight: 1, msgs: []msg{
		{10 * time.Second, false, 1, false},              // eth_subscribe, window 1
		{110 * time.Second, true, 1, false},              // its answer, in window 1 by its request
		{150 * time.Second, true, 1, false},              // a late answer, in window 2, still window 1's
		{170 * time.Second, true, 1, true},               // a notification in window 2
		{5*time.Minute + 10*time.Second, true, 1, true}}} // one in window 3
	e.commit(t, s, genesis.Add(time.Hour))
	want := []time.Time{genesis.Add(10 * time.Second), genesis.Add(10 * time.Second), genesis.Add(10 * time.Second),
		genesis.Add(170 * time.Second), genesis.Add(5*time.Minute + 10*time.Second)}
	for i, at := range s.relayAt {
		if !at.Equal(want[i]) {
			t.Errorf("message %d: RelayAt %v, want %v", i, at, want[i])
		}
	}
	if n := e.settleAll(t); n != 3 {
		t.Fatalf("settled %d windows, want 3", n)
	}
	st := e.ledgerState(t)
	for _, w := range []string{"1 A X 3 3 3 upokt", "3 A X 1 1 1 upokt", "5 A X 1 1 1 upokt"} {
		if !strings.Contains(st, w) {
			t.Errorf("ledger lacks %q:\n%s", w, st)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM findings WHERE kind = 'late_relay'`); n != 0 {
		t.Errorf("%d late relays, want none", n)
	}
}

// TestSettlementConfigFixed: the chain configuration is stored at the
// first start; the same again passes (another URL too), any other window
// parameter is refused.
func TestSettlementConfigFixed(t *testing.T) {
	e := newCommitEnv(t)
	ctx := context.Background()
	c := SettlementConfig{Source: "clock", Genesis: some(genesis), BlockTime: time.Minute, SessionBlocks: 10, GraceBlocks: 1}
	if err := e.s.EnsureSettlementConfig(ctx, c); err != nil {
		t.Fatal(err)
	}
	again := c
	again.URL = "elsewhere"
	if err := e.s.EnsureSettlementConfig(ctx, again); err != nil {
		t.Fatalf("the same configuration: %v", err)
	}
	for _, change := range []func(*SettlementConfig){
		func(c *SettlementConfig) { c.SessionBlocks = 4 },
		func(c *SettlementConfig) { c.GraceBlocks = 2 },
		func(c *SettlementConfig) { c.BlockTime = 5 * time.Second },
		func(c *SettlementConfig) { c.Genesis = some(genesis.Add(time.Second)) },
		func(c *SettlementConfig) { c.Source, c.Genesis = "cometbft", Stream{}.LastRequestAt },
	} {
		d := c
		change(&d)
		if err := e.s.EnsureSettlementConfig(ctx, d); !errors.Is(err, ErrSettlementConfig) {
			t.Errorf("config %+v: %v, want ErrSettlementConfig", d, err)
		}
	}
}

// TestSettleConcurrent: settlers racing for the same windows settle each
// exactly once: every window is settled by one of them, and the ledger
// holds one transaction per session.
func TestSettleConcurrent(t *testing.T) {
	e := newSettleEnv(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO tariffs (service, application, price_per_unit, currency, effective_from)
		VALUES ('eth', '', 1, 'upokt', '-infinity')`); err != nil {
		t.Fatal(err)
	}
	e.windows(t, 10*time.Minute)
	var msgs []msg
	for i := range 50 {
		msgs = append(msgs, msg{at: time.Duration(i) * 12 * time.Second, units: 1})
	}
	e.commit(t, &streamSpec{n: 1, app: "A", sup: "X", weight: 1, msgs: msgs}, genesis.Add(time.Hour))
	const settlers = 4
	settled := make(chan int, settlers)
	errs := make(chan error, settlers)
	for range settlers {
		go func() {
			n := 0
			for {
				_, done, err := e.s.SettleNext(ctx, e.params())
				if err != nil {
					errs <- err
					return
				}
				if !done {
					settled <- n
					return
				}
				n++
			}
		}()
	}
	total := 0
	for range settlers {
		select {
		case err := <-errs:
			t.Fatal(err)
		case n := <-settled:
			total += n
		}
	}
	windows := e.count(t, `SELECT count(*) FROM chain_sessions`)
	if int64(total) != windows {
		t.Fatalf("%d settlements of %d windows", total, windows)
	}
	if n := e.count(t, `SELECT sum(relays) FROM sessions`); n != 50 {
		t.Fatalf("%d relays settled, want 50", n)
	}
	if n, s := e.count(t, `SELECT count(*) FROM ledger_transactions`), e.count(t, `SELECT count(*) FROM sessions`); n != s {
		t.Fatalf("%d transactions for %d sessions", n, s)
	}
	if b, err := e.s.Balance(ctx, "supplier:X:upokt", Stream{}.ClosedAt); err != nil || b != "50" {
		t.Fatalf("supplier balance %s, %v", b, err)
	}
	if r, err := e.s.VerifyLedger(ctx); err != nil || len(r.Problems) > 0 {
		t.Fatalf("verify: %+v, %v", r, err)
	}
}
