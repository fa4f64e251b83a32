package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/internal/pgtest"
)

// benchBatches returns n batches of size messages, each yielding one relay,
// over 200 interleaved streams, for partition p, as the meter builds them.
func benchBatches(p, n, size int) []*Batch {
	const streams = 200
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	seqs := make([]int64, streams)
	out := make([]*Batch, n)
	for i := range out {
		b := &Batch{Group: "g", Topic: "t", Partition: p, From: int64(i * size), To: int64((i + 1) * size)}
		if i == 0 {
			b.From = NoOffset
		}
		for j := range size {
			k := (i*size + j) % streams
			var id [16]byte
			id[0], id[6], id[10], id[15] = 0x01, 0x70, byte(p), byte(k)
			seqs[k]++
			seq := seqs[k]
			ts := at.Add(time.Duration(i*size+j) * time.Millisecond)
			b.Messages = append(b.Messages, Message{StreamID: id, Seq: seq, ObservedAt: ts, Direction: "CLIENT_TO_UPSTREAM",
				Role: "REQUEST", Method: "eth_call", WireSize: 120, PayloadSize: 0, Units: 1})
			var buf [28]byte
			copy(buf[:], id[:])
			binary.BigEndian.PutUint64(buf[16:], uint64(seq))
			b.Relays = append(b.Relays, Relay{RelayID: sha256.Sum256(buf[:]), StreamID: id, Seq: seq, RequestSeq: seq, ResponseSeq: seq - 1 + int64(seq&1),
				Protocol: "WEBSOCKET_JSONRPC", Service: "eth", Application: "app", Supplier: "sup", Weight: 1, Policy: "message",
				PolicyVersion: 1, ObservedAt: ts})
		}
		b.Usage = []UsageDelta{{UsageKey: UsageKey{Minute: at.Truncate(time.Minute), Protocol: "WEBSOCKET_JSONRPC", Service: "eth",
			Application: "app", Supplier: "sup"}, Messages: int64(size), Relays: int64(size), Units: int64(size), Bytes: int64(size) * 120}}
		for k := range streams {
			var id [16]byte
			id[0], id[6], id[10], id[15] = 0x01, 0x70, byte(p), byte(k)
			b.Streams = append(b.Streams, Stream{StreamID: id, Topic: "t", Partition: p, Protocol: "WEBSOCKET_JSONRPC",
				Service: "eth", Application: "app", Supplier: "sup", EdgeID: "e", Policy: "message", PolicyVersion: 1,
				ComputeUnits: 1, OpenedAt: at, LastSeq: seqs[k], Chain: make([]byte, 32)})
		}
		out[i] = b
	}
	return out
}

// BenchmarkCommit measures Store.Commit alone: b.N messages (and as many
// relays) in batches of 5000, committed by 4 partitions concurrently.
//
//	go test ./ledger -run '^$' -bench Commit -benchtime 300000x
func BenchmarkCommit(b *testing.B) {
	const size, parts = 5000, 4
	pool, _ := pgtest.DB(b)
	s, ctx := New(pool), context.Background()
	per := max(1, b.N/size/parts)
	batches := make([][]*Batch, parts)
	for p := range batches {
		batches[p] = benchBatches(p, per, size)
	}
	b.ResetTimer()
	pg0, wal0 := pgtest.ServerCPU(ctx, pool), walBytes(ctx, b, pool)
	began := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, parts)
	for p := range parts {
		wg.Go(func() {
			for _, bt := range batches[p] {
				if err := s.Commit(ctx, bt); err != nil {
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

// walBytes returns the server's current WAL position in bytes.
func walBytes(ctx context.Context, b *testing.B, pool *pgxpool.Pool) int64 {
	var n int64
	if err := pool.QueryRow(ctx, `SELECT pg_current_wal_lsn() - '0/0'`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
