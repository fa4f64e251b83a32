package ledger

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/internal/pgtest"
)

func meterBatch(from, to int64, seq int64) *Batch {
	id := [16]byte{0x01, 0x90, 6: 0x70, 15: 9}
	at := time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC)
	return &Batch{Group: "g", Topic: "t", Partition: 3, From: from, To: to,
		Messages: []Message{{StreamID: id, Seq: seq, ObservedAt: at, Direction: "CLIENT_TO_UPSTREAM", Role: "REQUEST", WireSize: 10, Units: 1}},
		Relays: []Relay{{RelayID: [32]byte{byte(seq)}, StreamID: id, Seq: seq, RequestSeq: seq, Protocol: "P", Service: "s",
			Application: "a", Supplier: "u", Weight: 2, Policy: "message", PolicyVersion: 1, ObservedAt: at}},
		Usage: []UsageDelta{{UsageKey: UsageKey{Minute: at.Truncate(time.Minute), Protocol: "P", Service: "s", Application: "a", Supplier: "u"},
			Messages: 1, Relays: 1, Units: 2, Bytes: 10}},
		Findings: []Finding{{Kind: FindingGap, StreamID: id, HasStream: true, Seq: seq, HasSeq: true, Detail: "d"}},
	}
}

// TestCommitFences: the offset moves only from the offset a batch started
// at; a batch from a stale offset (a zombie after a rebalance) writes
// nothing.
func TestCommitFences(t *testing.T) {
	pool, _ := pgtest.DB(t)
	s, ctx := New(pool), context.Background()
	count := func(q string) (n int64) {
		t.Helper()
		if err := pool.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if off, err := s.NextOffset(ctx, "g", "t", 3); err != nil || off != NoOffset {
		t.Fatalf("NextOffset before any batch = %d, %v", off, err)
	}
	if err := s.Commit(ctx, meterBatch(NoOffset, 10, 1)); err != nil {
		t.Fatal(err)
	}
	for _, stale := range []*Batch{meterBatch(NoOffset, 10, 2), meterBatch(5, 12, 2), meterBatch(11, 12, 2)} {
		if err := s.Commit(ctx, stale); !errors.Is(err, ErrFenced) {
			t.Fatalf("batch from %d: err = %v, want ErrFenced", stale.From, err)
		}
	}
	if n := count(`SELECT count(*) FROM messages`) + count(`SELECT count(*) FROM relays`) + count(`SELECT count(*) FROM findings`); n != 3 {
		t.Fatalf("fenced batches wrote rows: %d rows, want 3", n)
	}
	if err := s.Commit(ctx, meterBatch(10, 20, 2)); err != nil {
		t.Fatal(err)
	}
	if off, err := s.NextOffset(ctx, "g", "t", 3); err != nil || off != 20 {
		t.Fatalf("NextOffset = %d, %v, want 20", off, err)
	}
	// usage rows add up
	if n := count(`SELECT units * 1000 + messages FROM usage_minutes`); n != 4002 {
		t.Fatalf("usage units*1000+messages = %d, want 4002", n)
	}
}

func TestStreamsRoundTrip(t *testing.T) {
	pool, _ := pgtest.DB(t)
	s, ctx := New(pool), context.Background()
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	open := Stream{StreamID: [16]byte{1}, Topic: "t", Partition: 1, Protocol: "P", Service: "s", Application: "a",
		Supplier: "u", EdgeID: "e", Policy: "message", PolicyVersion: 1, ComputeUnits: 3, OpenedAt: at, LastSeq: 1,
		Chain: []byte{9}}
	b := &Batch{Group: "g", Topic: "t", Partition: 1, From: NoOffset, To: 1, Streams: []Stream{open}}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	closed := open
	req, resp, reason, code, complete := int64(2), int64(3), "eof", int32(1000), true
	closed.LastSeq, closed.ClosedAt, closed.CloseReason, closed.CloseCode, closed.Complete = 4, &at, &reason, &code, &complete
	closed.LastRequestSeq, closed.LastResponseSeq, closed.PolicyState = &req, &resp, []byte("carry")
	closed.MessagesToUpstream, closed.BytesToUpstream, closed.Relays, closed.Units, closed.Duplicates = 1, 10, 2, 6, 7
	b = &Batch{Group: "g", Topic: "t", Partition: 1, From: 1, To: 4, Streams: []Stream{closed}}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.Streams(ctx, [][16]byte{{1}, {2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("Streams returned %d rows, want 1", len(got))
	}
	got[0].OpenedAt, got[0].ClosedAt = got[0].OpenedAt.UTC(), &at
	if !reflect.DeepEqual(got[0], closed) {
		t.Fatalf("stream\n got %+v\nwant %+v", got[0], closed)
	}
}

func TestPutService(t *testing.T) {
	pool, _ := pgtest.DB(t)
	s, ctx := New(pool), context.Background()
	if err := s.PutService(ctx, Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutService(ctx, Service{ID: "pool", Protocol: "STRATUM_V2", Policy: "bytes", PolicyParams: []byte(`{"block": 64}`), ComputeUnitsPerRelay: 5}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "eth" || got[0].Policy != "message" || got[0].PolicyVersion != 1 || got[0].ComputeUnitsPerRelay != 1 ||
		got[1].Policy != "bytes" || string(got[1].PolicyParams) != `{"block": 64}` || got[1].ComputeUnitsPerRelay != 5 {
		t.Fatalf("services = %+v", got)
	}
}
