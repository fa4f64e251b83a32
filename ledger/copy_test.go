package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/internal/pgtest"
)

// TestCopyRoundTrip: messages, relays and findings written by the binary
// COPY encoder read back as written: every column, NULLs, times to the
// microsecond (before 1970 and 2000 too), empty and non-ASCII text.
func TestCopyRoundTrip(t *testing.T) {
	pool, _ := pgtest.DB(t)
	s, ctx := New(pool), context.Background()
	id := [16]byte{0x01, 0x90, 6: 0x70, 15: 0xfe}
	times := []time.Time{
		time.Date(2026, 5, 1, 10, 0, 30, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(1969, 7, 20, 20, 17, 40, 1000, time.UTC),
	}
	b := &Batch{Group: "g", Topic: "t", Partition: 0, From: NoOffset, To: 3}
	for i, at := range times {
		seq := int64(i + 1)
		b.Messages = append(b.Messages, Message{StreamID: id, Seq: seq, ObservedAt: at, Direction: "UPSTREAM_TO_CLIENT",
			Role: "RESPONSE", Method: "éth_call", BatchSize: -int32(i), RPCID: "", SubscriptionID: "0xsub",
			WireSize: 1 << 40, PayloadSize: int64(i), Units: 7})
		b.Relays = append(b.Relays, Relay{RelayID: [32]byte{31: byte(i)}, StreamID: id, Seq: seq, UnitIndex: int32(i),
			RequestSeq: int64(i), ResponseSeq: seq * 2, Unpaired: i == 1, Protocol: "P", Service: "s", Application: "",
			Supplier: "ü", Weight: -3, Policy: "bytes", PolicyVersion: 1 << 30, ObservedAt: at})
	}
	b.Findings = []Finding{
		{Kind: FindingGap, StreamID: id, HasStream: true, Seq: 2, HasSeq: true, Detail: "d1", ObservedAt: times[2]},
		{Kind: FindingUndecodable, Topic: "t", Partition: 3, Offset: 0, HasOffset: true, Detail: ""},
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	for i, at := range times {
		var m Message
		if err := pool.QueryRow(ctx, `SELECT stream_id, seq, observed_at, direction, role, method, batch_size, rpc_id,
			subscription_id, wire_size, payload_size, units FROM messages WHERE seq = $1`, i+1).Scan(&m.StreamID, &m.Seq,
			&m.ObservedAt, &m.Direction, &m.Role, &m.Method, &m.BatchSize, &m.RPCID, &m.SubscriptionID, &m.WireSize,
			&m.PayloadSize, &m.Units); err != nil {
			t.Fatal(err)
		}
		want := b.Messages[i]
		want.ObservedAt = at.Truncate(time.Microsecond)
		if m.ObservedAt = m.ObservedAt.UTC(); m != want {
			t.Errorf("message %d:\n got %+v\nwant %+v", i, m, want)
		}
		var r Relay
		var relayID []byte
		var req, resp *int64
		if err := pool.QueryRow(ctx, `SELECT relay_id, stream_id, seq, unit_index, request_seq, response_seq, unpaired,
			protocol, service, application, supplier, weight, policy, policy_version, observed_at
			FROM relays WHERE seq = $1`, i+1).Scan(&relayID, &r.StreamID, &r.Seq, &r.UnitIndex, &req, &resp, &r.Unpaired,
			&r.Protocol, &r.Service, &r.Application, &r.Supplier, &r.Weight, &r.Policy, &r.PolicyVersion,
			&r.ObservedAt); err != nil {
			t.Fatal(err)
		}
		r.RelayID = [32]byte(relayID)
		if req != nil {
			r.RequestSeq = *req
		}
		if resp != nil {
			r.ResponseSeq = *resp
		}
		if (req == nil) != (b.Relays[i].RequestSeq == 0) {
			t.Errorf("relay %d: request_seq %v, want NULL only for 0", i, req)
		}
		wantR := b.Relays[i]
		wantR.ObservedAt = at.Truncate(time.Microsecond)
		if r.ObservedAt = r.ObservedAt.UTC(); r != wantR {
			t.Errorf("relay %d:\n got %+v\nwant %+v", i, r, wantR)
		}
	}
	var got string
	if err := pool.QueryRow(ctx, `SELECT string_agg(concat_ws('|', kind, coalesce(stream_id::text, 'NULL'),
		coalesce(seq::text, 'NULL'), coalesce(topic, 'NULL'), coalesce(kafka_partition::text, 'NULL'),
		coalesce(kafka_offset::text, 'NULL'), detail, coalesce(to_char(observed_at AT TIME ZONE 'UTC',
		'YYYY-MM-DD HH24:MI:SS.US'), 'NULL')), ';' ORDER BY id) FROM findings`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	const want = "gap|01900000-0000-7000-0000-0000000000fe|2|NULL|NULL|NULL|d1|1969-07-20 20:17:40.000001;" +
		"undecodable|NULL|NULL|t|3|0||NULL"
	if got != want {
		t.Fatalf("findings\n got %s\nwant %s", got, want)
	}
}
