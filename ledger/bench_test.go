package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/internal/pgtest"
)

// benchBatches returns n batches of size messages of one unit each, over
// 200 interleaved streams, for partition p, as the meter builds them:
// every stream of a batch is changed (the first batch opens them).
func benchBatches(p int32, policyID int64, n, size int) []*Batch {
	const streams = 200
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	rows := make([]Stream, streams)
	for k := range rows {
		var id uuid.UUID
		id[0], id[6], id[10], id[15] = 0x01, 0x70, byte(p), byte(k)
		rows[k] = Stream{StreamID: id, Topic: "t", Partition: p, Protocol: "WEBSOCKET_JSONRPC", Service: "eth",
			Application: "app", Supplier: "sup", EdgeID: "e", PolicyID: policyID, ComputeUnits: 1, OpenedAt: at,
			Chain: make([]byte, 32), LastObservedAt: at}
	}
	out := make([]*Batch, n)
	for i := range out {
		b := &Batch{Group: "g", Topic: "t", Partition: p, From: int64(i * size), To: int64((i + 1) * size)}
		if i == 0 {
			b.From = NoOffset
		}
		for j := range size {
			st := &rows[(i*size+j)%streams]
			st.LastSeq++
			ts := at.Add(time.Duration(i*size+j) * time.Millisecond)
			m := Message{StreamID: st.StreamID, Seq: st.LastSeq, ObservedAt: ts, Direction: 1, Role: 1,
				Method: "eth_call", WireSize: 120, Units: 1}
			if st.LastSeq > 1 {
				m.CounterpartSeq = sql.Null[int64]{V: st.LastSeq - 1, Valid: true}
			}
			b.Messages = append(b.Messages, m)
			st.MessagesToUpstream++
			st.BytesToUpstream += 120
			st.Relays++
			st.LastObservedAt = ts
		}
		for k := range rows {
			rows[k].Version++
			b.Streams = append(b.Streams, StreamChange{Stream: rows[k], Opened: i == 0})
		}
		out[i] = b
	}
	return out
}

// BenchmarkCommit measures Store.Commit alone: b.N messages in batches of
// 5000, committed by 4 partitions concurrently.
//
//	go test ./ledger -run '^$' -bench 'Commit|RawCopy' -benchtime 300000x
func BenchmarkCommit(b *testing.B) {
	benchWrites(b, func(ctx context.Context, s *Store, bt *Batch) error { return s.Commit(ctx, bt) })
}

// BenchmarkRawCopy is the reference for BenchmarkCommit: the same messages
// rows written with pgx's CopyFrom in transactions of 5000, by 4
// connections concurrently, and nothing else (no offsets, streams or
// rollups).
func BenchmarkRawCopy(b *testing.B) {
	benchWrites(b, func(ctx context.Context, s *Store, bt *Batch) error {
		rows := make([][]any, len(bt.Messages))
		for i, m := range bt.Messages {
			rows[i] = []any{m.StreamID, m.Seq, m.ObservedAt, m.Direction, m.Role, m.Method, m.BatchSize, m.RPCID,
				m.SubscriptionID, m.WireSize, m.PayloadSize, m.Units, ptr(m.CounterpartSeq)}
		}
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"messages"}, messageColumns, pgx.CopyFromRows(rows))
			return err
		})
	})
}

// benchWrites writes b.N messages in batches of 5000 with write, from 4
// partitions concurrently, and reports messages/s, WAL bytes and Postgres
// CPU per message.
func benchWrites(b *testing.B, write func(context.Context, *Store, *Batch) error) {
	const size, parts = 5000, 4
	pool, _ := pgtest.DB(b)
	s, ctx := New(pool), context.Background()
	policyID := benchPolicy(b, pool)
	per := max(1, b.N/size/parts)
	batches := make([][]*Batch, parts)
	for p := range batches {
		batches[p] = benchBatches(int32(p), policyID, per, size)
	}
	b.ResetTimer()
	pg0, wal0 := pgtest.ServerCPU(ctx, pool), walBytes(ctx, b, pool)
	began := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for p := range parts {
		wg.Go(func() {
			for _, bt := range batches[p] {
				if err := write(ctx, s, bt); err != nil {
					errs[p] = fmt.Errorf("partition %d: %w", p, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	pg1, wal1 := pgtest.ServerCPU(ctx, pool), walBytes(ctx, b, pool)
	b.StopTimer()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	n := float64(per * size * parts)
	b.ReportMetric(n/elapsed.Seconds(), "messages/s")
	b.ReportMetric(float64(wal1-wal0)/n, "WAL-B/message")
	if pg0 >= 0 && pg1 >= 0 {
		b.ReportMetric((pg1-pg0).Seconds()*1e6/n, "pg-µs/message")
	}
}

// benchPolicy stores the message policy and returns its id.
func benchPolicy(b *testing.B, pool *pgxpool.Pool) int64 {
	var id int64
	if err := pool.QueryRow(context.Background(), `INSERT INTO policies (name, version) VALUES ('message', 1) RETURNING id`).Scan(&id); err != nil {
		b.Fatal(err)
	}
	return id
}

// walBytes returns the server's current WAL position in bytes.
func walBytes(ctx context.Context, b *testing.B, pool *pgxpool.Pool) int64 {
	var n int64
	if err := pool.QueryRow(ctx, `SELECT pg_current_wal_lsn() - '0/0'`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
