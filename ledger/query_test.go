package ledger

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaymeter/relaymeter/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var (
	t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	// Streams: s1 and s2 open at the same instant (a tie the stream cursor
	// must break), s3 later and still open, s4 and s5 later still.
	s1 = uuid.MustParse("01900000-0000-7000-8000-000000000001")
	s2 = uuid.MustParse("01900000-0000-7000-8000-000000000002")
	s3 = uuid.MustParse("01900000-0000-7000-8000-000000000003")
	s4 = uuid.MustParse("01900000-0000-7000-8000-000000000004")
	s5 = uuid.MustParse("01900000-0000-7000-8000-000000000005")
)

// seed fills a fresh database with a small, known ledger:
//
//	s1 eth/app1/supA, weight 10, closed; its close says the request side
//	   crossed up to seq 3, so seq 5 did not cross
//	   1 up   units 0  waiting
//	   2 down units 1  counterpart 1
//	   3 up   units 1  counterpart 2
//	   4 down units 2  counterpart 3
//	   5 up   units 1  counterpart 4   (did not cross: no relay)
//	s2 eth/app2/supA, closed, no messages
//	s3 pool/app1/supB (STRATUM_V2, bytes v2), weight 1, open
//	   1 up   units 3  waiting (nothing of the other side yet)
//	s4 eth/app1/supB, closed, first counterpart seq 3
//	   1 up, 2 up waiting (pair with 3); 3 down counterpart 2
//	s5 eth/app1/supB, closed, one-sided
//	   1 up   units 1  waiting: unpaired
//
// The i-th message listed is observed i minutes after t0.
func seed(t *testing.T) *Store {
	t.Helper()
	pool, _ := pgtest.DB(t)
	ctx := context.Background()
	stmts := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO policies (id, name, version, params) VALUES (101, 'message', 1, '{}'), (102, 'bytes', 2, '{"block": 100}')`, nil},
		{`INSERT INTO services (id, protocol) VALUES ('eth', 'WEBSOCKET_JSONRPC'), ('pool', 'STRATUM_V2')`, nil},
		{`INSERT INTO service_policies (service, policy_id, effective_from) VALUES
			('eth', 101, '-infinity'), ('pool', 102, '-infinity')`, nil},
		{`INSERT INTO tariffs (service, price_per_unit, currency, effective_from) VALUES
			('eth', 0.000000000000000001, 'upokt', '-infinity'), ('pool', 12.5, 'USD', '-infinity')`, nil},
		{`INSERT INTO streams (stream_id, topic, kafka_partition, protocol, service, application, supplier, edge_id,
			policy_id, compute_units, opened_at, closed_at, state_version, last_seq, chain, last_observed_at, relays,
			complete, first_counterpart_seq, forwarded_to_upstream_seq) VALUES
			($1, 't', 0, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 'e1', 101, 10, $6, $7, 3, 5, '\x01', $7, 5, true, 2, 3),
			($2, 't', 1, 'WEBSOCKET_JSONRPC', 'eth', 'app2', 'supA', 'e1', 101, 10, $6, $7, 1, 0, '\x02', $6, 0, true, NULL, NULL),
			($3, 't', 0, 'STRATUM_V2', 'pool', 'app1', 'supB', 'e2', 102, 1, $8, NULL, 2, 2, '\x03', $8, 3, NULL, NULL, NULL),
			($4, 't', 2, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supB', 'e2', 101, 1, $9, $9, 2, 3, '\x04', $9, 3, true, 3, NULL),
			($5, 't', 2, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supB', 'e2', 101, 1, $9, $9, 2, 1, '\x05', $9, 1, true, NULL, NULL)`,
			[]any{s1, s2, s3, s4, s5, t0, t0.Add(time.Hour), t0.Add(time.Minute), t0.Add(2 * time.Minute)}},
		{`INSERT INTO messages (stream_id, seq, observed_at, direction, role, method, wire_size, payload_size, units, counterpart_seq)
			SELECT v.stream_id, v.seq, $5::timestamptz + v.id * interval '1 minute', v.direction,
				CASE v.direction WHEN 2 THEN 2 ELSE 1 END, 'eth_call', 100 + v.id, 90 + v.id, v.units, v.counterpart
			FROM (VALUES (1, $1::uuid, 1, 1, 0, NULL::bigint), (2, $1, 2, 2, 1, 1), (3, $1, 3, 1, 1, 2), (4, $1, 4, 2, 2, 3),
				(5, $1, 5, 1, 1, 4), (6, $2, 1, 1, 3, NULL), (7, $3, 1, 1, 1, NULL), (8, $3, 2, 1, 1, NULL),
				(9, $3, 3, 2, 1, 2), (10, $4, 1, 1, 1, NULL)) AS v(id, stream_id, seq, direction, units, counterpart)`,
			[]any{s1, s3, s4, s5, t0}},
		{`INSERT INTO usage_minutes (minute, protocol, service, application, supplier, messages, relays, units, bytes) VALUES
			($1, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 1, 2, 3, 4),
			($1::timestamptz + interval '1 minute', 'WEBSOCKET_JSONRPC', 'eth', 'app2', 'supA', 10, 20, 30, 40),
			($1::timestamptz + interval '2 minutes', 'STRATUM_V2', 'pool', 'app1', 'supB', 100, 200, 300, 400),
			($1::timestamptz + interval '3 minutes', 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supB', 1000, 2000, 3000, 9000000000000)`,
			[]any{t0}},
		{`INSERT INTO findings (kind, stream_id, seq, detail, resolved_at) VALUES
			('gap', $1, 4, 'seq 4 missing', NULL), ('chain', $1, 5, 'chain broken', NULL), ('gap', $2, 2, 'seq 2 missing', now()),
			('undecodable', NULL, NULL, 'bad record', NULL)`, []any{s1, s3}},
	}
	for _, st := range stmts {
		if _, err := pool.Exec(ctx, st.sql, st.args...); err != nil {
			t.Fatalf("seed: %v\n%s", err, st.sql)
		}
	}
	return New(pool)
}

func TestUsage(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		f    UsageFilter
		want Usage
	}{
		{"all", UsageFilter{Scope: All}, Usage{1111, 2222, 3333, 9000000000444}},
		{"service", UsageFilter{Scope: All, Service: "eth"}, Usage{1011, 2022, 3033, 9000000000044}},
		{"application", UsageFilter{Scope: All, Application: "app2"}, Usage{10, 20, 30, 40}},
		{"supplier", UsageFilter{Scope: All, Supplier: "supB"}, Usage{1100, 2200, 3300, 9000000000400}},
		{"protocol", UsageFilter{Scope: All, Protocol: "STRATUM_V2"}, Usage{100, 200, 300, 400}},
		{"combined", UsageFilter{Scope: All, Service: "eth", Application: "app1", Supplier: "supA"}, Usage{1, 2, 3, 4}},
		// From rounds down to its minute and is inclusive.
		{"from", UsageFilter{Scope: All, From: t0.Add(90 * time.Second)}, Usage{1110, 2220, 3330, 9000000000440}},
		// To rounds down to its minute and is exclusive.
		{"to", UsageFilter{Scope: All, To: t0.Add(2*time.Minute + 59*time.Second)}, Usage{11, 22, 33, 44}},
		{"from to", UsageFilter{Scope: All, From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)}, Usage{110, 220, 330, 440}},
		{"empty range", UsageFilter{Scope: All, From: t0, To: t0.Add(30 * time.Second)}, Usage{}},
		{"no match", UsageFilter{Scope: All, Service: "nope"}, Usage{}},
	} {
		got, err := s.Usage(ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if _, err := s.Usage(ctx, UsageFilter{Scope: All, From: t0, To: t0.Add(-time.Minute)}); !IsInvalidInput(err) {
		t.Errorf("to before from: got %v, want invalid input", err)
	}
}

// relayKeys names each relay of a page "stream/seq/unit", the stream by
// the last byte of its id.
func relayKeys(p Page[Relay]) []string {
	var keys []string
	for _, r := range p.Items {
		keys = append(keys, relayKey(r))
	}
	return keys
}

func relayKey(r Relay) string { return fmt.Sprintf("%d/%d/%d", r.StreamID[15], r.Seq, r.UnitIndex) }

var allRelays = []string{"1/2/0", "1/3/0", "1/4/0", "1/4/1", "3/1/0", "3/1/1", "3/1/2", "4/1/0", "4/2/0", "4/3/0", "5/1/0"}

func TestListRelaysPagination(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	var all []string
	after, pages := "", 0
	for {
		p, err := s.ListRelays(ctx, RelayFilter{Scope: All}, 3, after)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, relayKeys(p)...)
		if !p.HasNextPage {
			break
		}
		if p.EndCursor() == "" || pages > 10 {
			t.Fatalf("page %d: end cursor %q", pages, p.EndCursor())
		}
		after = p.EndCursor()
	}
	// Pages split a message's units (1/4/0 | 1/4/1, 3/1/0 3/1/1 | 3/1/2) and
	// resume inside it.
	if !reflect.DeepEqual(all, allRelays) || pages != 4 {
		t.Fatalf("walked %v in %d pages, want %v in 4", all, pages, allRelays)
	}
	// After the last row: an empty last page.
	last, err := s.ListRelays(ctx, RelayFilter{Scope: All}, len(allRelays), "")
	if err != nil || len(last.Items) != len(allRelays) || last.HasNextPage {
		t.Fatalf("all: %d items, next %v, %v", len(last.Items), last.HasNextPage, err)
	}
	p, err := s.ListRelays(ctx, RelayFilter{Scope: All}, 3, last.EndCursor())
	if err != nil || len(p.Items) != 0 || p.HasNextPage || p.EndCursor() != "" {
		t.Fatalf("after the end: %+v, %v", p, err)
	}
	// first = 0: no rows, but whether there are any.
	p, err = s.ListRelays(ctx, RelayFilter{Scope: All}, 0, "")
	if err != nil || len(p.Items) != 0 || !p.HasNextPage {
		t.Fatalf("first 0: %+v, %v", p, err)
	}
}

func TestListRelaysFilters(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		f    RelayFilter
		want []string
	}{
		{"service", RelayFilter{Scope: All, Service: "pool"}, []string{"3/1/0", "3/1/1", "3/1/2"}},
		{"application", RelayFilter{Scope: All, Application: "app1"}, allRelays},
		{"other application", RelayFilter{Scope: All, Application: "app2"}, nil},
		{"supplier", RelayFilter{Scope: All, Supplier: "supA"}, []string{"1/2/0", "1/3/0", "1/4/0", "1/4/1"}},
		{"protocol", RelayFilter{Scope: All, Protocol: "STRATUM_V2"}, []string{"3/1/0", "3/1/1", "3/1/2"}},
		{"stream", RelayFilter{Scope: All, StreamID: &s1}, []string{"1/2/0", "1/3/0", "1/4/0", "1/4/1"}},
		{"stream without messages", RelayFilter{Scope: All, StreamID: &s2}, nil},
		{"from inclusive", RelayFilter{Scope: All, From: t0.Add(7 * time.Minute)}, []string{"4/1/0", "4/2/0", "4/3/0", "5/1/0"}},
		{"to exclusive", RelayFilter{Scope: All, To: t0.Add(4 * time.Minute)}, []string{"1/2/0", "1/3/0"}},
		{"paired", RelayFilter{Scope: All, Pairing: PairingPaired}, []string{"1/2/0", "1/3/0", "1/4/0", "1/4/1", "4/1/0", "4/2/0", "4/3/0"}},
		{"pending", RelayFilter{Scope: All, Pairing: PairingPending}, []string{"3/1/0", "3/1/1", "3/1/2"}},
		{"unpaired", RelayFilter{Scope: All, Pairing: PairingUnpaired}, []string{"5/1/0"}},
		{"combined", RelayFilter{Scope: All, StreamID: &s4, Pairing: PairingPaired, To: t0.Add(9 * time.Minute)}, []string{"4/1/0", "4/2/0"}},
	} {
		p, err := s.ListRelays(ctx, tc.f, 100, "")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := relayKeys(p); !reflect.DeepEqual(got, tc.want) || p.HasNextPage {
			t.Errorf("%s: got %v (next %v), want %v", tc.name, got, p.HasNextPage, tc.want)
		}
	}
	// A page of a filtered list continues within the filter.
	p, err := s.ListRelays(ctx, RelayFilter{Scope: All, Service: "eth"}, 3, "")
	if err != nil || !p.HasNextPage {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	p, err = s.ListRelays(ctx, RelayFilter{Scope: All, Service: "eth"}, 3, p.EndCursor())
	if got := relayKeys(p); err != nil || !reflect.DeepEqual(got, []string{"1/4/1", "4/1/0", "4/2/0"}) || !p.HasNextPage {
		t.Fatalf("second page: %v (next %v), %v", got, p.HasNextPage, err)
	}
	// Every field of a relay, derived from its message and stream.
	all, err := s.ListRelays(ctx, RelayFilter{Scope: All}, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]Relay{}
	for _, r := range all.Items {
		byKey[relayKey(r)] = r
	}
	null := sql.Null[int64]{}
	seq := func(v int64) sql.Null[int64] { return sql.Null[int64]{V: v, Valid: true} }
	for key, want := range map[string]Relay{
		"1/4/1": {StreamID: s1, Seq: 4, UnitIndex: 1, RequestSeq: seq(3), ResponseSeq: seq(4), Pairing: PairingPaired, Protocol: "WEBSOCKET_JSONRPC", Service: "eth", Application: "app1", Supplier: "supA", Weight: 10, Policy: "message", PolicyVersion: 1, ObservedAt: t0.Add(4 * time.Minute)},
		"3/1/2": {StreamID: s3, Seq: 1, UnitIndex: 2, RequestSeq: seq(1), ResponseSeq: null, Pairing: PairingPending, Protocol: "STRATUM_V2", Service: "pool", Application: "app1", Supplier: "supB", Weight: 1, Policy: "bytes", PolicyVersion: 2, ObservedAt: t0.Add(6 * time.Minute)},
		"4/1/0": {StreamID: s4, Seq: 1, UnitIndex: 0, RequestSeq: seq(1), ResponseSeq: seq(3), Pairing: PairingPaired, Protocol: "WEBSOCKET_JSONRPC", Service: "eth", Application: "app1", Supplier: "supB", Weight: 1, Policy: "message", PolicyVersion: 1, ObservedAt: t0.Add(7 * time.Minute)},
		"4/3/0": {StreamID: s4, Seq: 3, UnitIndex: 0, RequestSeq: seq(2), ResponseSeq: seq(3), Pairing: PairingPaired, Protocol: "WEBSOCKET_JSONRPC", Service: "eth", Application: "app1", Supplier: "supB", Weight: 1, Policy: "message", PolicyVersion: 1, ObservedAt: t0.Add(9 * time.Minute)},
		"5/1/0": {StreamID: s5, Seq: 1, UnitIndex: 0, RequestSeq: seq(1), ResponseSeq: null, Pairing: PairingUnpaired, Protocol: "WEBSOCKET_JSONRPC", Service: "eth", Application: "app1", Supplier: "supB", Weight: 1, Policy: "message", PolicyVersion: 1, ObservedAt: t0.Add(10 * time.Minute)},
	} {
		got := byKey[key]
		got.ObservedAt = got.ObservedAt.UTC()
		if got != want {
			t.Errorf("relay %s:\n got %+v\nwant %+v", key, got, want)
		}
	}
	if id := byKey["1/4/1"].ID(); id != RelayID(s1, 4, 1) || id == RelayID(s1, 4, 0) {
		t.Errorf("relay id %x", id)
	}
}

func TestInvalidInput(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	findings, err := s.ListFindings(ctx, FindingFilter{Scope: All}, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, after := range []string{"!!!", "cmVsYXk6MQ==", b64("relay"), b64("relay:"), b64("relay:x"), b64("relay:-1"),
		b64("relay:1"), b64("relay:1_-1"), b64("relay:" + s1.String() + "_1"), b64("relay:" + s1.String() + "_1_x"),
		b64("relay:" + s1.String() + "_-1_0"), b64("relay:x_1_0"), b64("stream:1"), findings.EndCursor()} {
		if _, err := s.ListRelays(ctx, RelayFilter{Scope: All}, 10, after); !IsInvalidInput(err) {
			t.Errorf("relays after %q: got %v, want invalid input", after, err)
		}
	}
	for _, first := range []int{-1, MaxPageSize + 1} {
		if _, err := s.ListRelays(ctx, RelayFilter{Scope: All}, first, ""); !IsInvalidInput(err) {
			t.Errorf("first %d: got %v, want invalid input", first, err)
		}
	}
	if _, err := s.ListRelays(ctx, RelayFilter{Scope: All, Pairing: "SOMETIMES"}, 10, ""); !IsInvalidInput(err) {
		t.Errorf("unknown pairing: got %v", err)
	}
	if _, err := s.ListStreams(ctx, StreamFilter{Scope: All}, 10, b64("stream:12_notauuid")); !IsInvalidInput(err) {
		t.Errorf("stream cursor: got %v", err)
	}
	if _, err := s.ListFindings(ctx, FindingFilter{Scope: All}, 10, b64("relay:1")); !IsInvalidInput(err) {
		t.Errorf("finding cursor: got %v", err)
	}
	msgs, err := s.ListMessages(ctx, All, s1, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListMessages(ctx, All, s3, 10, msgs.EndCursor()); !IsInvalidInput(err) {
		t.Errorf("cursor of another stream's messages: got %v", err)
	}
}

func TestListStreams(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	var got []uuid.UUID
	after := ""
	for range 10 {
		p, err := s.ListStreams(ctx, StreamFilter{Scope: All}, 1, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Items {
			got = append(got, r.StreamID)
		}
		if !p.HasNextPage {
			break
		}
		after = p.EndCursor()
	}
	// Newest first; ties broken by id.
	if want := []uuid.UUID{s4, s5, s3, s1, s2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("walked %v, want %v", got, want)
	}
	open, closed := true, false
	for _, tc := range []struct {
		name string
		f    StreamFilter
		want []uuid.UUID
	}{
		{"open", StreamFilter{Scope: All, Open: &open}, []uuid.UUID{s3}},
		{"closed", StreamFilter{Scope: All, Open: &closed}, []uuid.UUID{s4, s5, s1, s2}},
		{"application", StreamFilter{Scope: All, Application: "app2"}, []uuid.UUID{s2}},
		{"service", StreamFilter{Scope: All, Service: "pool"}, []uuid.UUID{s3}},
		{"supplier", StreamFilter{Scope: All, Supplier: "supA"}, []uuid.UUID{s1, s2}},
		{"protocol", StreamFilter{Scope: All, Protocol: "BEAM"}, nil},
		{"from", StreamFilter{Scope: All, From: t0.Add(time.Second)}, []uuid.UUID{s4, s5, s3}},
		{"to", StreamFilter{Scope: All, To: t0.Add(time.Minute)}, []uuid.UUID{s1, s2}},
	} {
		p, err := s.ListStreams(ctx, tc.f, 10, "")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ids []uuid.UUID
		for _, r := range p.Items {
			ids = append(ids, r.StreamID)
		}
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, ids, tc.want)
		}
	}
}

func TestStreamAndMessages(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	st, found, err := s.StreamByID(ctx, All, s1)
	if err != nil || !found {
		t.Fatalf("stream: found %v, %v", found, err)
	}
	if st.StreamID != s1 || st.Application != "app1" || st.ComputeUnits != 10 || !st.Closed() || !st.Complete.Valid ||
		!st.Complete.V || st.LastSeq != 5 || st.Relays != 5 || st.Partition != 0 || st.PolicyID != 101 ||
		!st.FirstCounterpartSeq.Valid || st.FirstCounterpartSeq.V != 2 || st.Version != 3 {
		t.Errorf("stream: %+v", st)
	}
	if _, found, err := s.StreamByID(ctx, All, uuid.New()); err != nil || found {
		t.Errorf("unknown stream: found %v, %v", found, err)
	}
	var seqs []int64
	after := ""
	for range 5 {
		p, err := s.ListMessages(ctx, All, s1, 2, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Items {
			seqs = append(seqs, m.Seq)
		}
		if !p.HasNextPage {
			break
		}
		after = p.EndCursor()
	}
	if want := []int64{1, 2, 3, 4, 5}; !reflect.DeepEqual(seqs, want) {
		t.Fatalf("messages: %v, want %v", seqs, want)
	}
	p, err := s.ListMessages(ctx, All, s1, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if m := p.Items[0]; m.Direction != 1 || m.Role != 1 || m.Method != "eth_call" || m.WireSize != 101 ||
		m.CounterpartSeq.Valid {
		t.Errorf("message 1: %+v", m)
	}
	// What crossed: the close of s1 says the request side crossed up to
	// seq 3.
	for _, c := range []struct {
		response bool
		seq      int64
		want     bool
	}{{false, 3, true}, {false, 5, false}, {true, 4, true}, {true, 1000, true}} {
		if got := st.Crossed(c.response, c.seq); got != c.want {
			t.Errorf("Crossed(%v, %d) = %v", c.response, c.seq, got)
		}
	}
	if p, err := s.ListMessages(ctx, All, s2, 10, ""); err != nil || len(p.Items) != 0 || p.HasNextPage {
		t.Errorf("stream without messages: %+v, %v", p, err)
	}
}

func TestListFindings(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	kinds := func(p Page[Finding]) []string {
		var k []string
		for _, f := range p.Items {
			k = append(k, f.Kind+":"+f.Detail)
		}
		return k
	}
	p, err := s.ListFindings(ctx, FindingFilter{Scope: All}, 3, "")
	if err != nil || !p.HasNextPage || len(p.Items) != 3 {
		t.Fatalf("page 1: %v, %v", kinds(p), err)
	}
	p, err = s.ListFindings(ctx, FindingFilter{Scope: All}, 3, p.EndCursor())
	if err != nil || p.HasNextPage || !reflect.DeepEqual(kinds(p), []string{"undecodable:bad record"}) {
		t.Fatalf("page 2: %v, %v", kinds(p), err)
	}
	if f := p.Items[0]; f.StreamID.Valid || f.Seq.Valid || f.ResolvedAt.Valid {
		t.Errorf("finding without stream: %+v", f)
	}
	p, err = s.ListFindings(ctx, FindingFilter{Scope: All, Kind: "gap"}, 10, "")
	if err != nil || !reflect.DeepEqual(kinds(p), []string{"gap:seq 4 missing", "gap:seq 2 missing"}) {
		t.Errorf("kind: %v, %v", kinds(p), err)
	}
	p, err = s.ListFindings(ctx, FindingFilter{Scope: All, StreamID: &s1}, 10, "")
	if err != nil || !reflect.DeepEqual(kinds(p), []string{"gap:seq 4 missing", "chain:chain broken"}) {
		t.Errorf("stream: %v, %v", kinds(p), err)
	}
	if p.Items[0].StreamID.V != s1 || p.Items[0].Seq.V != 4 {
		t.Errorf("finding: %+v", p.Items[0])
	}
	open, resolved := true, false
	p, err = s.ListFindings(ctx, FindingFilter{Scope: All, Open: &resolved}, 10, "")
	if err != nil || !reflect.DeepEqual(kinds(p), []string{"gap:seq 2 missing"}) || !p.Items[0].ResolvedAt.Valid {
		t.Errorf("resolved: %v, %v", kinds(p), err)
	}
	p, err = s.ListFindings(ctx, FindingFilter{Scope: All, Kind: "gap", Open: &open}, 10, "")
	if err != nil || !reflect.DeepEqual(kinds(p), []string{"gap:seq 4 missing"}) {
		t.Errorf("open gaps: %v, %v", kinds(p), err)
	}
}

func TestListServices(t *testing.T) {
	s := seed(t)
	got, err := s.ListServices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "eth" || got[1].ID != "pool" {
		t.Fatalf("services: %+v", got)
	}
	if got[0].PricePerUnit != "0.000000000000000001" || got[1].PricePerUnit != "12.500000000000000000" ||
		string(got[0].Policy.Params) != "{}" || got[0].Policy.Name != "message" || got[1].Protocol != "STRATUM_V2" ||
		got[1].Policy.ID != 102 || got[1].Policy.Name != "bytes" || got[1].Policy.Version != 2 ||
		string(got[1].Policy.Params) != `{"block": 100}` {
		t.Errorf("services: %+v", got)
	}
}
