package audit

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/chain"
	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
)

// lateSettled is the traffic of settled (on the same chain and tariffs),
// metered and settled through height 10 with the head at 12:10, plus
// stream 51 (app-b) with a request and its response at 12:00. Then, by a
// real meter, while nothing settles:
//   - a late relay: stream 50 (app-a), opened and requesting at 12:01, in
//     the first window, settled;
//   - a take-back: stream 51's close says its response never reached the
//     client, though its window settled with it.
//
// The head moves to 12:12 and the settlement of window [11, 12] adjusts
// both. Last, another late relay (stream 52, app-a, at 12:01:30) that no
// settlement has adjusted yet.
func lateSettled(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, 2)
	var head atomic.Int64
	at := func(d time.Duration) { head.Store(base.Add(d).UnixNano()) }
	at(10 * time.Minute)
	c := &chain.Clock{Genesis: base, BlockTime: time.Minute, Now: func() time.Time { return time.Unix(0, head.Load()).UTC() }}
	sc := ledger.SettlementConfig{Source: "clock", Genesis: some(base), BlockTime: time.Minute, SessionBlocks: 2, GraceBlocks: 1}
	settling := func(cfg *meter.Config) { cfg.Chain, cfg.Settlement, cfg.SettleInterval = c, sc, 20*time.Millisecond }
	prices := func() {
		e.exec(t, `INSERT INTO tariffs (service, application, price_per_unit, currency, effective_from) VALUES
			('eth', '', 0.5, 'upokt', '-infinity'), ('eth', 'app-b', 2, 'upokt', '-infinity')`,
			`INSERT INTO service_fees (service, fee_bps, effective_from) VALUES ('eth', 250, '-infinity')`)
	}
	through := func(h int64) func() bool {
		return func() bool { return e.count(t, `SELECT settled_through_height FROM settlement_state`) >= h }
	}
	tb := newGen(51)
	e.produce(t, tb.open("eth", "app-b", "sup-1"), tb.req(time.Second), tb.resp(time.Second))
	traffic(t, e, prices, through(10), settling)

	lr := newGen(50)
	lr.at = base.Add(time.Minute).UnixNano()
	crossed := tb.seq - 1 // the request, not its response
	e.produce(t, lr.open("eth", "app-a", "sup-1"), lr.req(time.Second),
		tb.next(&event.Event{Body: &event.Event_Closed{Closed: &event.StreamClosed{Reason: "eof",
			MessagesToUpstream: tb.up, BytesToUpstream: tb.upBytes, MessagesToClient: tb.down, BytesToClient: tb.downBytes,
			ForwardedToClientThroughSeq: &crossed}}}, time.Millisecond))
	open := func(kind string, n int64) func() bool {
		return func() bool {
			return e.count(t, `SELECT count(*) FROM findings WHERE resolved_at IS NULL AND kind = '`+kind+`'`) == n
		}
	}
	e.meterUntil(t, func() bool {
		return open(ledger.FindingLateRelay, 1)() && open(ledger.FindingUncrossedAfterSettlement, 1)()
	},
		settling)
	at(12 * time.Minute)
	e.meterUntil(t, through(12), settling)
	if n := e.count(t, `SELECT count(*) FROM findings f JOIN ledger_transactions x ON x.id = f.transaction_id
		JOIN sessions s ON s.id = x.session
		WHERE f.kind IN ('late_relay', 'uncrossed_after_settlement') AND x.kind = 'adjustment' AND s.start_height = 11`); n != 2 {
		t.Fatalf("%d late relays and take-backs adjusted in window 11, want 2", n)
	}

	ur := newGen(52)
	ur.at = base.Add(90 * time.Second).UnixNano()
	e.produce(t, ur.open("eth", "app-a", "sup-1"), ur.req(time.Second))
	e.meterUntil(t, open(ledger.FindingLateRelay, 1), settling)
	return e
}

func TestAuditLateRelays(t *testing.T) {
	e := lateSettled(t)
	sum := e.audit(t, Filter{})
	if n := sum.Differences(); n != 0 {
		t.Fatalf("%d differences on an untouched ledger with late relays and a take-back: %+v", n, sum.Samples)
	}
	if r := e.count(t, fmt.Sprintf(`SELECT count(*) FROM audit_runs WHERE id = %d AND result = 'match'`, sum.RunID)); r != 1 {
		t.Fatalf("run %d did not record a match", sum.RunID)
	}
	if sum.Windows != 6 {
		t.Errorf("replay settled %d windows, want 6 ([1,2] to [11,12])", sum.Windows)
	}
	// Two settlements (app-a, app-b), two adjustments (app-a's late
	// relay, app-b's take-back); three findings, one still open.
	compared(t, sum, map[string]int64{"ledger_transactions": 4, "findings": 3})
}

func TestAuditFindsLateRelayTampering(t *testing.T) {
	const fabricated = `INSERT INTO findings (kind, stream_id, seq, detail, observed_at%s)
		VALUES ('late_relay', '01000000-0000-7000-0000-0000000000ff', 2, 'fabricated', '2026-11-01T12:01:00Z'%s)`
	for _, tc := range []struct {
		name   string
		tamper []string
		want   []string
	}{
		{"adjustment entry altered", []string{`ALTER TABLE ledger_entries DISABLE TRIGGER ALL`,
			`UPDATE ledger_entries SET amount = amount + 1 WHERE account = 'supplier:sup-1:upokt'
				AND transaction_seq = (SELECT seq FROM ledger_transactions x JOIN sessions s ON s.id = x.session
					WHERE x.kind = 'adjustment' AND s.application = 'app-a')`,
			`ALTER TABLE ledger_entries ENABLE TRIGGER ALL`},
			[]string{"differs ledger_entries", "differs ledger_chain", "differs ledger_chain"}},
		// A late relay of a message that is not in the log, pending or
		// said to be settled in app-a's adjustment.
		{"late relay fabricated", []string{fmt.Sprintf(fabricated, "", "")}, []string{"extra findings"}},
		{"settled late relay fabricated", []string{fmt.Sprintf(fabricated, ", resolved_at, transaction_id",
			`, now(), (SELECT x.id FROM ledger_transactions x JOIN sessions s ON s.id = x.session
				WHERE x.kind = 'adjustment' AND s.application = 'app-a')`)}, []string{"extra findings"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := lateSettled(t)
			e.exec(t, tc.tamper...)
			sum := e.audit(t, Filter{})
			if got := e.found(t, sum.RunID); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("findings %q, want %q", got, tc.want)
			}
			if sum.Differences() != int64(len(tc.want)) {
				t.Errorf("summary counts %d differences, want %d", sum.Differences(), len(tc.want))
			}
		})
	}
}
