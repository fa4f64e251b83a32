// Package settletest builds, through the ledger's own writes (Commit,
// AddChainSession, SettleNext), a small settled ledger whose every session,
// payout and balance is known, for the tests of the settlement reads
// (ledger, graphql).
//
// The chain is a clock from Genesis with blocks of 10 s and windows of two
// blocks: W1 = heights 1-2 = [G, G+20s), W3 = [G+20s, G+40s),
// W5 = [G+40s, G+60s), W7 = [G+60s, G+80s), and W9 from G+80s, its end not
// known. Service eth costs 2 upokt per unit, 3 for application app2, and
// takes 10% fees. Streams (weight = units per relay):
//
//	A app1/eth/supA weight 10  req G+5, resp G+8, req G+19, resp G+21
//	                           (its request at G+19: W1), req G+25 (W3),
//	                           and, metered after W3 settled, resp G+90 to
//	                           the request at G+25: a late relay of W3
//	B app2/eth/supA weight 1   req G+30 worth 2 relays (W3), req G+45 (W5)
//	C app1/eth/supB weight 1   req G+50 (W5), G+65 (W7), G+85 (W9)
//	D app1/eth/supB weight 1   req G+62 (W7), req G+70 that its close says
//	                           never crossed the edge
//
// W1 and W3 are settled, then the late relay is metered, then W5 is
// settled (with an adjustment of 20 upokt for the late relay); W7 is
// CLOSED, W9 OPEN. The ledger's transactions, by seq:
//
//	1 W1 settlement app1/supA  gross 80  fee 8    supplier 72
//	2 W3 settlement app1/supA  gross 20  fee 2    supplier 18
//	3 W3 settlement app2/supA  gross 6   fee 0.6  supplier 5.4
//	4 W5 adjustment app1/supA  gross 20  fee 2    supplier 18
//	5 W5 settlement app1/supB  gross 2   fee 0.2  supplier 1.8
//	6 W5 settlement app2/supA  gross 3   fee 0.3  supplier 2.7
package settletest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/chain"
	"github.com/relaymeter/relaymeter/ledger"
)

// Genesis is the chain's first block time.
var Genesis = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// The chain's parameters.
const (
	BlockTime     = 10 * time.Second
	SessionBlocks = 2
)

// The streams' ids.
var (
	StreamA = uuid.MustParse("01950000-0000-7000-8000-00000000000a")
	StreamB = uuid.MustParse("01950000-0000-7000-8000-00000000000b")
	StreamC = uuid.MustParse("01950000-0000-7000-8000-00000000000c")
	StreamD = uuid.MustParse("01950000-0000-7000-8000-00000000000d")
)

// Ledger is the fixture: its store and what it needs to go on (settle W7).
type Ledger struct {
	Store  *ledger.Store
	Clock  *chain.Clock
	t      testing.TB
	policy int64
	offset int64
	// clock is the partition's clock each batch stores: past every
	// window, so that the settler may settle any of them.
	clock time.Time
	// streams as the last batch left them, by id, and in the order opened
	streams map[uuid.UUID]*ledger.Stream
	order   []uuid.UUID
	// observed times of the messages, by stream and seq
	seen map[uuid.UUID]map[int64]time.Time
}

// At returns Genesis + s seconds.
func At(s float64) time.Time { return Genesis.Add(time.Duration(s * float64(time.Second))) }

// New builds the ledger described in the package comment on the migrated
// database of pool.
func New(t testing.TB, pool *pgxpool.Pool) *Ledger {
	t.Helper()
	l := configured(t, pool)
	for h := int64(1); h <= 9; h += SessionBlocks {
		l.window(h, h < 9)
	}

	l.open(StreamA, "app1", "supA", 10)
	l.open(StreamB, "app2", "supA", 1)
	l.open(StreamC, "app1", "supB", 1)
	l.open(StreamD, "app1", "supB", 1)
	l.commit([]msg{
		{StreamA, 1, 5, req, 0, 1}, {StreamA, 2, 8, resp, 1, 1}, {StreamA, 3, 19, req, 0, 1},
		{StreamA, 4, 21, resp, 3, 1}, {StreamA, 5, 25, req, 0, 1},
		{StreamB, 1, 30, req, 0, 2}, {StreamB, 2, 45, req, 0, 1},
		{StreamC, 1, 50, req, 0, 1}, {StreamC, 2, 65, req, 0, 1}, {StreamC, 3, 85, req, 0, 1},
		{StreamD, 1, 62, req, 0, 1}, {StreamD, 2, 70, req, 0, 1},
	}, StreamD)
	l.Settle(5) // W1, W3
	l.commit([]msg{{StreamA, 6, 90, resp, 5, 1}})
	l.Settle(7) // W5
	return l
}

// configured returns a Ledger on pool with service eth, its tariffs and
// its fee, and no traffic.
func configured(t testing.TB, pool *pgxpool.Pool) *Ledger {
	t.Helper()
	ctx := context.Background()
	l := &Ledger{Store: ledger.New(pool), Clock: &chain.Clock{Genesis: Genesis, BlockTime: BlockTime}, t: t,
		offset: ledger.NoOffset, clock: At(1000), streams: map[uuid.UUID]*ledger.Stream{}, seen: map[uuid.UUID]map[int64]time.Time{}}
	if err := l.Store.PutService(ctx, ledger.Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC"}); err != nil {
		t.Fatal(err)
	}
	svcs, _, err := l.Store.Services(ctx)
	if err != nil || len(svcs) != 1 {
		t.Fatalf("settletest: services %v, %v", svcs, err)
	}
	l.policy = svcs[0].Policy.ID
	for _, tf := range []ledger.Tariff{
		{Service: "eth", PricePerUnit: "2", Currency: "upokt"},
		{Service: "eth", Application: "app2", PricePerUnit: "3", Currency: "upokt"},
	} {
		if _, err := l.Store.AddTariff(ctx, tf); err != nil {
			t.Fatal(err)
		}
	}
	// The service's take rate, as the YAML's fee_bps declares it.
	if _, err := pool.Exec(ctx, `INSERT INTO service_fees (service, fee_bps, effective_from) VALUES ('eth', 1000, '-infinity')`); err != nil {
		t.Fatal(err)
	}
	return l
}

// window stores the window starting at height h, and its end if ended.
func (l *Ledger) window(h int64, ended bool) {
	l.t.Helper()
	w := ledger.ChainSession{StartHeight: h, EndHeight: h + SessionBlocks - 1, StartsAt: l.blockTime(h), StartHash: l.Clock.Hash(h)}
	if ended {
		w.EndsAt = sql.Null[time.Time]{V: l.blockTime(h + SessionBlocks), Valid: true}
	}
	if err := l.Store.AddChainSession(context.Background(), w); err != nil {
		l.t.Fatal(err)
	}
}

func (l *Ledger) blockTime(h int64) time.Time {
	b, err := l.Clock.Block(context.Background(), h)
	if err != nil {
		l.t.Fatal(err)
	}
	return b.Time
}

const (
	req  = 1 // CLIENT_TO_UPSTREAM
	resp = 2 // UPSTREAM_TO_CLIENT
)

// msg is a message of the fixture: its stream, seq, observed time (seconds
// after Genesis), direction, the seq of its counterpart (0: none) and
// units.
type msg struct {
	stream      uuid.UUID
	seq         int64
	at          float64
	direction   int16
	counterpart int64
	units       int64
}

func (l *Ledger) open(id uuid.UUID, app, supplier string, weight int64) {
	l.streams[id] = &ledger.Stream{StreamID: id, Topic: "t", Partition: 0, Protocol: "WEBSOCKET_JSONRPC",
		Service: "eth", Application: app, Supplier: supplier, EdgeID: "e", PolicyID: l.policy, ComputeUnits: weight,
		OpenedAt: Genesis, Version: 0, Chain: []byte{1}, LastObservedAt: Genesis}
	l.seen[id] = map[int64]time.Time{}
	l.order = append(l.order, id)
}

// commit meters msgs in one batch, as the meter would: the streams they
// touch moved on, each message with its relay time, and the streams of
// closing closed, their close saying that only their first message to
// the upstream crossed the edge.
func (l *Ledger) commit(msgs []msg, closing ...uuid.UUID) {
	l.t.Helper()
	b := &ledger.Batch{Group: "g", Topic: "t", Partition: 0, From: l.offset, To: max(l.offset, 0) + int64(len(msgs)),
		Clock: l.clock}
	touched := map[uuid.UUID]bool{}
	for _, m := range msgs {
		st := l.streams[m.stream]
		observed := At(m.at)
		row := ledger.Message{StreamID: m.stream, Seq: m.seq, ObservedAt: observed, Direction: m.direction,
			Role: m.direction, Method: "eth_call", WireSize: 100, PayloadSize: 90, Units: m.units}
		requestAt := time.Time{}
		if m.counterpart > 0 {
			row.CounterpartSeq = sql.Null[int64]{V: m.counterpart, Valid: true}
			requestAt = l.seen[m.stream][m.counterpart]
		}
		row.RelayAt = ledger.RelayTime(ledger.Answers(row.Direction, row.Role), observed, m.counterpart > 0, requestAt)
		l.seen[m.stream][m.seq] = observed
		b.Messages = append(b.Messages, row)
		st.LastSeq, st.LastObservedAt, st.Relays = m.seq, observed, st.Relays+m.units
		if m.direction == resp {
			st.MessagesToClient, st.BytesToClient = st.MessagesToClient+1, st.BytesToClient+100
			st.LastResponseSeq = sql.Null[int64]{V: m.seq, Valid: true}
		} else {
			st.MessagesToUpstream, st.BytesToUpstream = st.MessagesToUpstream+1, st.BytesToUpstream+100
			st.LastRequestSeq = sql.Null[int64]{V: m.seq, Valid: true}
		}
		touched[m.stream] = true
	}
	closed := map[uuid.UUID]bool{}
	for _, id := range closing {
		closed[id], touched[id] = true, true
	}
	for _, id := range l.order {
		if !touched[id] {
			continue
		}
		st := l.streams[id]
		st.Version++
		if closed[id] {
			st.ClosedAt = sql.Null[time.Time]{V: st.LastObservedAt, Valid: true}
			st.CloseReason = sql.Null[string]{V: "eof", Valid: true}
			st.ForwardedToUpstreamSeq = sql.Null[int64]{V: 1, Valid: true}
		}
		b.Streams = append(b.Streams, ledger.StreamChange{Stream: *st, Opened: st.Version == 1, Closed: closed[id]})
	}
	if err := l.Store.Commit(context.Background(), b); err != nil {
		l.t.Fatal(err)
	}
	l.offset = b.To
}

// Settle runs the settler with the chain's head at head until it has
// nothing left to settle.
func (l *Ledger) Settle(head int64) {
	l.t.Helper()
	for i := 0; ; i++ {
		_, done, err := l.Store.SettleNext(context.Background(), ledger.SettleParams{Group: "g", Topic: "t",
			Partitions: 1, Head: head, GraceBlocks: 1, Now: At(1000 + float64(head))})
		if err != nil {
			l.t.Fatal(err)
		}
		if !done {
			return
		}
		if i > 1_000_000 {
			l.t.Fatal("settletest: the settler does not stop")
		}
	}
}
