package ledger

import (
	"context"
	"database/sql"
	"flag"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaymeter/relaymeter/chain"
	"github.com/relaymeter/relaymeter/internal/pgtest"
)

var settleRelays = flag.Int("settle.relays", 1_000_000, "relays of the session BenchmarkSettle settles")

// BenchmarkSettle measures the settlement of one window holding a session
// of -settle.relays relays (default 1 M: 200 streams of one application,
// service and supplier, requests and their responses alternating, so that
// half the relays are timed by their request), loaded through Commit's
// COPY path before the timer starts; each iteration settles its own
// window. It reports the settlement's wall time and Postgres's CPU time
// for it.
//
//	go test ./ledger -run '^$' -bench 'Settle$' -benchtime 1x
//	go test ./ledger -run '^$' -bench 'Settle$' -benchtime 1x -args -settle.relays=200000
func BenchmarkSettle(b *testing.B) {
	pool, _ := pgtest.DB(b)
	s := New(pool)
	ctx := context.Background()
	if err := s.PutService(ctx, Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC", ComputeUnitsPerRelay: 3}); err != nil {
		b.Fatal(err)
	}
	svcs, _, err := s.Services(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO tariffs (service, application, price_per_unit, currency, effective_from)
		VALUES ('eth', '', 0.000001, 'upokt', '-infinity'); INSERT INTO service_fees VALUES ('eth', 250, '-infinity')`); err != nil {
		b.Fatal(err)
	}
	// Windows of an hour (one block each), so that a million relays at
	// 1 ms apart fit in one.
	clock := &chain.Clock{Genesis: genesis, BlockTime: time.Hour}
	n := *settleRelays
	offset := NoOffset
	for i := range b.N {
		b.StopTimer()
		start := genesis.Add(time.Duration(i) * time.Hour)
		offset = loadSession(b, s, svcs[0].Policy.ID, i, start, n, offset)
		blk, _ := clock.Block(ctx, int64(i+1))
		if err := s.AddChainSession(ctx, ChainSession{StartHeight: int64(i + 1), EndHeight: int64(i + 1), StartsAt: blk.Time,
			EndsAt: some(blk.Time.Add(time.Hour)), StartHash: blk.Hash}); err != nil {
			b.Fatal(err)
		}
		if err := s.TickClock(ctx, "g", "t", 0, offset, 0, start.Add(2*time.Hour)); err != nil {
			b.Fatal(err)
		}
		cpu := pgtest.ServerCPU(ctx, pool)
		b.StartTimer()
		began := time.Now()
		res, done, err := s.SettleNext(ctx, SettleParams{Group: "g", Topic: "t", Partitions: 1, Head: int64(i + 2), GraceBlocks: 1})
		if err != nil || !done || res.Sessions != 1 {
			b.Fatalf("settle: %+v, %v, %v", res, done, err)
		}
		b.ReportMetric(time.Since(began).Seconds(), "s/settlement")
		if cpu >= 0 {
			// Postgres's CPU time: what the settlement costs, whatever
			// else the machine runs.
			b.ReportMetric((pgtest.ServerCPU(ctx, pool) - cpu).Seconds(), "pg-cpu-s/settlement")
		}
	}
	var relays int64
	if err := pool.QueryRow(ctx, `SELECT relays FROM sessions ORDER BY start_height DESC LIMIT 1`).Scan(&relays); err != nil || relays != int64(n) {
		b.Fatalf("session of %d relays, want %d (%v)", relays, n, err)
	}
	b.ReportMetric(float64(n), "relays/session")
}

// loadSession commits n one-unit messages of 200 streams of (app, eth,
// sup), 1 ms apart from start, in batches of 5000 through Commit; it
// returns the partition's next offset.
func loadSession(b testing.TB, s *Store, policy int64, round int, start time.Time, n int, offset int64) int64 {
	const streams, size = 200, 5000
	rows := make([]Stream, streams)
	for k := range rows {
		var id uuid.UUID
		id[0], id[6], id[9], id[10], id[15] = 0x01, 0x70, byte(round), byte(k>>8), byte(k)
		rows[k] = Stream{StreamID: id, Topic: "t", Partition: 0, Protocol: "WEBSOCKET_JSONRPC", Service: "eth",
			Application: "app", Supplier: "sup", EdgeID: "e", PolicyID: policy, ComputeUnits: 3, OpenedAt: start,
			Chain: make([]byte, 32), LastObservedAt: start}
	}
	last := make([]time.Time, streams)
	for i := 0; i < n; i += size {
		to := offset + int64(size)
		if offset == NoOffset {
			to = int64(size)
		}
		bt := &Batch{Group: "g", Topic: "t", Partition: 0, From: offset, To: to, Clock: start}
		for j := i; j < min(i+size, n); j++ {
			st := &rows[j%streams]
			st.LastSeq++
			ts := start.Add(time.Duration(j) * time.Millisecond)
			m := Message{StreamID: st.StreamID, Seq: st.LastSeq, ObservedAt: ts, Direction: 1, Role: 1, WireSize: 120, Units: 1, RelayAt: ts}
			if st.LastSeq%2 == 0 { // a response to the request before it
				m.Direction, m.Role = 2, 2
				m.CounterpartSeq = sql.Null[int64]{V: st.LastSeq - 1, Valid: true}
				m.RelayAt = last[j%streams]
			} else {
				last[j%streams] = ts
			}
			bt.Messages = append(bt.Messages, m)
			st.Relays++
			st.LastObservedAt = ts
		}
		for k := range rows {
			rows[k].Version++
			bt.Streams = append(bt.Streams, StreamChange{Stream: rows[k], Opened: i == 0})
		}
		if err := s.Commit(context.Background(), bt); err != nil {
			b.Fatal(err)
		}
		offset = to
	}
	return offset
}
