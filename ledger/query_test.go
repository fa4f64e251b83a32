package ledger

import (
	"context"
	"encoding/base64"
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
	// must break), s3 later and still open.
	s1 = uuid.MustParse("01900000-0000-7000-8000-000000000001")
	s2 = uuid.MustParse("01900000-0000-7000-8000-000000000002")
	s3 = uuid.MustParse("01900000-0000-7000-8000-000000000003")
)

// seed fills a fresh database with a small, known ledger.
func seed(t *testing.T) *Store {
	t.Helper()
	pool, _ := pgtest.DB(t)
	ctx := context.Background()
	stmts := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO services (id, protocol, price_per_unit) VALUES
			('eth', 'WEBSOCKET_JSONRPC', 0.000000000000000001), ('pool', 'STRATUM_V2', 12.5)`, nil},
		{`INSERT INTO streams (stream_id, topic, kafka_partition, protocol, service, application, supplier, edge_id,
			policy, policy_version, compute_units, opened_at, closed_at, last_seq, chain, relays, complete) VALUES
			($1, 't', 0, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 'e1', 'message', 1, 10, $4, $5, 5, '\x01', 4, true),
			($2, 't', 1, 'WEBSOCKET_JSONRPC', 'eth', 'app2', 'supA', 'e1', 'message', 1, 10, $4, $5, 0, '\x02', 0, true),
			($3, 't', 0, 'STRATUM_V2', 'pool', 'app1', 'supB', 'e2', 'message', 1, 1, $6, NULL, 2, '\x03', 3, NULL)`,
			[]any{s1, s2, s3, t0, t0.Add(time.Hour), t0.Add(time.Minute)}},
		{`INSERT INTO messages (stream_id, seq, observed_at, direction, role, method, wire_size, payload_size, units)
			SELECT $1, g, $2::timestamptz + g * interval '1 second',
				CASE WHEN g % 2 = 1 THEN 'CLIENT_TO_UPSTREAM' ELSE 'UPSTREAM_TO_CLIENT' END,
				CASE WHEN g % 2 = 1 THEN 'REQUEST' ELSE 'RESPONSE' END, 'eth_call', 100 + g, 90 + g, 1
			FROM generate_series(1, 5) g`, []any{s1, t0}},
		{`INSERT INTO messages (stream_id, seq, observed_at, direction, role, wire_size, payload_size, units)
			VALUES ($1, 1, $2, 'CLIENT_TO_UPSTREAM', 'REQUEST', 1, 1, 1)`, []any{s3, t0}},
		// Relays 1-7: ids follow insertion order.
		{`INSERT INTO relays (relay_id, stream_id, seq, unit_index, request_seq, response_seq, unpaired,
			protocol, service, application, supplier, weight, policy, policy_version, observed_at) VALUES
			('\x01', $1, 2, 0, 1, 2, false, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 10, 'message', 1, $3),
			('\x02', $1, 3, 0, 3, NULL, false, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 10, 'message', 1, $3::timestamptz + interval '1 minute'),
			('\x03', $1, 4, 0, 3, 4, false, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 10, 'message', 1, $3::timestamptz + interval '2 minutes'),
			('\x04', $1, 5, 0, 5, NULL, true, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 10, 'message', 1, $3::timestamptz + interval '3 minutes'),
			('\x05', $2, 1, 0, 1, NULL, false, 'STRATUM_V2', 'pool', 'app1', 'supB', 1, 'bytes', 2, $3::timestamptz + interval '4 minutes'),
			('\x06', $2, 1, 1, 1, NULL, false, 'STRATUM_V2', 'pool', 'app1', 'supB', 1, 'bytes', 2, $3::timestamptz + interval '5 minutes'),
			('\x07', $2, 1, 2, 1, NULL, false, 'STRATUM_V2', 'pool', 'app1', 'supB', 1, 'bytes', 2, $3::timestamptz + interval '6 minutes')`,
			[]any{s1, s3, t0}},
		{`INSERT INTO usage_minutes (minute, protocol, service, application, supplier, messages, relays, units, bytes) VALUES
			($1, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 1, 2, 3, 4),
			($1::timestamptz + interval '1 minute', 'WEBSOCKET_JSONRPC', 'eth', 'app2', 'supA', 10, 20, 30, 40),
			($1::timestamptz + interval '2 minutes', 'STRATUM_V2', 'pool', 'app1', 'supB', 100, 200, 300, 400),
			($1::timestamptz + interval '3 minutes', 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supB', 1000, 2000, 3000, 9000000000000)`,
			[]any{t0}},
		{`INSERT INTO findings (kind, stream_id, seq, detail) VALUES
			('gap', $1, 4, 'seq 4 missing'), ('chain', $1, 5, 'chain broken'), ('gap', $2, 2, 'seq 2 missing'),
			('undecodable', NULL, NULL, 'bad record')`, []any{s1, s3}},
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
		{"all", UsageFilter{}, Usage{1111, 2222, 3333, 9000000000444}},
		{"service", UsageFilter{Service: "eth"}, Usage{1011, 2022, 3033, 9000000000044}},
		{"application", UsageFilter{Application: "app2"}, Usage{10, 20, 30, 40}},
		{"supplier", UsageFilter{Supplier: "supB"}, Usage{1100, 2200, 3300, 9000000000400}},
		{"protocol", UsageFilter{Protocol: "STRATUM_V2"}, Usage{100, 200, 300, 400}},
		{"combined", UsageFilter{Service: "eth", Application: "app1", Supplier: "supA"}, Usage{1, 2, 3, 4}},
		// From rounds down to its minute and is inclusive.
		{"from", UsageFilter{From: t0.Add(90 * time.Second)}, Usage{1110, 2220, 3330, 9000000000440}},
		// To rounds down to its minute and is exclusive.
		{"to", UsageFilter{To: t0.Add(2*time.Minute + 59*time.Second)}, Usage{11, 22, 33, 44}},
		{"from to", UsageFilter{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)}, Usage{110, 220, 330, 440}},
		{"empty range", UsageFilter{From: t0, To: t0.Add(30 * time.Second)}, Usage{}},
		{"no match", UsageFilter{Service: "nope"}, Usage{}},
	} {
		got, err := s.Usage(ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if _, err := s.Usage(ctx, UsageFilter{From: t0, To: t0.Add(-time.Minute)}); !IsInvalidInput(err) {
		t.Errorf("to before from: got %v, want invalid input", err)
	}
}

func relayIDs(p Page[RelayRow]) []int64 {
	var ids []int64
	for _, r := range p.Items {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestListRelaysPagination(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	var all []int64
	after, pages := "", 0
	for {
		p, err := s.ListRelays(ctx, RelayFilter{}, 3, after)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, relayIDs(p)...)
		if !p.HasNextPage {
			break
		}
		if p.EndCursor() == "" || pages > 10 {
			t.Fatalf("page %d: end cursor %q", pages, p.EndCursor())
		}
		after = p.EndCursor()
	}
	if want := []int64{1, 2, 3, 4, 5, 6, 7}; !reflect.DeepEqual(all, want) || pages != 3 {
		t.Fatalf("walked %v in %d pages, want %v in 3", all, pages, want)
	}
	// After the last row: an empty last page.
	last, err := s.ListRelays(ctx, RelayFilter{}, 7, "")
	if err != nil || len(last.Items) != 7 || last.HasNextPage {
		t.Fatalf("first 7: %d items, next %v, %v", len(last.Items), last.HasNextPage, err)
	}
	p, err := s.ListRelays(ctx, RelayFilter{}, 3, last.EndCursor())
	if err != nil || len(p.Items) != 0 || p.HasNextPage || p.EndCursor() != "" {
		t.Fatalf("after the end: %+v, %v", p, err)
	}
	// first = 0: no rows, but whether there are any.
	p, err = s.ListRelays(ctx, RelayFilter{}, 0, "")
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
		want []int64
	}{
		{"service", RelayFilter{Service: "pool"}, []int64{5, 6, 7}},
		{"application", RelayFilter{Application: "app1"}, []int64{1, 2, 3, 4, 5, 6, 7}},
		{"supplier", RelayFilter{Supplier: "supA"}, []int64{1, 2, 3, 4}},
		{"protocol", RelayFilter{Protocol: "STRATUM_V2"}, []int64{5, 6, 7}},
		{"stream", RelayFilter{StreamID: &s1}, []int64{1, 2, 3, 4}},
		{"other stream", RelayFilter{StreamID: &s2}, nil},
		{"from inclusive", RelayFilter{From: t0.Add(2 * time.Minute)}, []int64{3, 4, 5, 6, 7}},
		{"to exclusive", RelayFilter{To: t0.Add(2 * time.Minute)}, []int64{1, 2}},
		{"paired", RelayFilter{Pairing: PairingPaired}, []int64{1, 3}},
		{"pending", RelayFilter{Pairing: PairingPending}, []int64{2, 5, 6, 7}},
		{"unpaired", RelayFilter{Pairing: PairingUnpaired}, []int64{4}},
		{"combined", RelayFilter{StreamID: &s1, Pairing: PairingPending, To: t0.Add(time.Hour)}, []int64{2}},
	} {
		p, err := s.ListRelays(ctx, tc.f, 100, "")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := relayIDs(p); !reflect.DeepEqual(got, tc.want) || p.HasNextPage {
			t.Errorf("%s: got %v (next %v), want %v", tc.name, got, p.HasNextPage, tc.want)
		}
	}
	// A page of a filtered list continues within the filter.
	p, err := s.ListRelays(ctx, RelayFilter{Service: "eth"}, 2, "")
	if err != nil || !p.HasNextPage {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	p, err = s.ListRelays(ctx, RelayFilter{Service: "eth"}, 2, p.EndCursor())
	if got := relayIDs(p); err != nil || !reflect.DeepEqual(got, []int64{3, 4}) || p.HasNextPage {
		t.Fatalf("second page: %v (next %v), %v", got, p.HasNextPage, err)
	}
	r := p.Items[1]
	if r.StreamID != s1 || r.Seq != 5 || r.Pairing != PairingUnpaired || *r.RequestSeq != 5 || r.ResponseSeq != nil ||
		r.Weight != 10 || !r.ObservedAt.Equal(t0.Add(3*time.Minute)) || len(r.RelayID) != 1 {
		t.Errorf("relay 4: %+v", r)
	}
}

func TestInvalidInput(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	findings, err := s.ListFindings(ctx, FindingFilter{}, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, after := range []string{"!!!", "cmVsYXk6MQ==", b64("relay"), b64("relay:"), b64("relay:x"), b64("relay:-1"),
		b64("stream:1"), findings.EndCursor()} {
		if _, err := s.ListRelays(ctx, RelayFilter{}, 10, after); !IsInvalidInput(err) {
			t.Errorf("relays after %q: got %v, want invalid input", after, err)
		}
	}
	for _, first := range []int{-1, MaxPageSize + 1} {
		if _, err := s.ListRelays(ctx, RelayFilter{}, first, ""); !IsInvalidInput(err) {
			t.Errorf("first %d: got %v, want invalid input", first, err)
		}
	}
	if _, err := s.ListRelays(ctx, RelayFilter{Pairing: "SOMETIMES"}, 10, ""); !IsInvalidInput(err) {
		t.Errorf("unknown pairing: got %v", err)
	}
	if _, err := s.ListStreams(ctx, StreamFilter{}, 10, b64("stream:12_notauuid")); !IsInvalidInput(err) {
		t.Errorf("stream cursor: got %v", err)
	}
	if _, err := s.ListFindings(ctx, FindingFilter{}, 10, b64("relay:1")); !IsInvalidInput(err) {
		t.Errorf("finding cursor: got %v", err)
	}
	msgs, err := s.ListMessages(ctx, s1, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListMessages(ctx, s3, 10, msgs.EndCursor()); !IsInvalidInput(err) {
		t.Errorf("cursor of another stream's messages: got %v", err)
	}
}

func TestListStreams(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	var got []uuid.UUID
	after := ""
	for range 5 {
		p, err := s.ListStreams(ctx, StreamFilter{}, 1, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Items {
			got = append(got, uuid.UUID(r.StreamID))
		}
		if !p.HasNextPage {
			break
		}
		after = p.EndCursor()
	}
	// Newest first; the tie at t0 broken by id.
	if want := []uuid.UUID{s3, s1, s2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("walked %v, want %v", got, want)
	}
	open, closed := true, false
	for _, tc := range []struct {
		name string
		f    StreamFilter
		want []uuid.UUID
	}{
		{"open", StreamFilter{Open: &open}, []uuid.UUID{s3}},
		{"closed", StreamFilter{Open: &closed}, []uuid.UUID{s1, s2}},
		{"application", StreamFilter{Application: "app2"}, []uuid.UUID{s2}},
		{"service", StreamFilter{Service: "pool"}, []uuid.UUID{s3}},
		{"supplier", StreamFilter{Supplier: "supA"}, []uuid.UUID{s1, s2}},
		{"protocol", StreamFilter{Protocol: "BEAM"}, nil},
		{"from", StreamFilter{From: t0.Add(time.Second)}, []uuid.UUID{s3}},
		{"to", StreamFilter{To: t0.Add(time.Minute)}, []uuid.UUID{s1, s2}},
	} {
		p, err := s.ListStreams(ctx, tc.f, 10, "")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ids []uuid.UUID
		for _, r := range p.Items {
			ids = append(ids, uuid.UUID(r.StreamID))
		}
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, ids, tc.want)
		}
	}
}

func TestStreamAndMessages(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	st, found, err := s.StreamByID(ctx, s1)
	if err != nil || !found {
		t.Fatalf("stream: found %v, %v", found, err)
	}
	if uuid.UUID(st.StreamID) != s1 || st.Application != "app1" || st.ComputeUnits != 10 || st.ClosedAt == nil || st.Complete == nil ||
		!*st.Complete || st.LastSeq != 5 || st.Relays != 4 || st.Partition != 0 {
		t.Errorf("stream: %+v", st)
	}
	if _, found, err := s.StreamByID(ctx, uuid.New()); err != nil || found {
		t.Errorf("unknown stream: found %v, %v", found, err)
	}
	var seqs []int64
	after := ""
	for range 5 {
		p, err := s.ListMessages(ctx, s1, 2, after)
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
	p, err := s.ListMessages(ctx, s1, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if m := p.Items[0]; m.Direction != "CLIENT_TO_UPSTREAM" || m.Role != "REQUEST" || m.Method != "eth_call" || m.WireSize != 101 {
		t.Errorf("message 1: %+v", m)
	}
	if p, err := s.ListMessages(ctx, s2, 10, ""); err != nil || len(p.Items) != 0 || p.HasNextPage {
		t.Errorf("stream without messages: %+v, %v", p, err)
	}
}

func TestListFindings(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	kinds := func(p Page[FindingRow]) []string {
		var k []string
		for _, f := range p.Items {
			k = append(k, f.Kind+":"+f.Detail)
		}
		return k
	}
	p, err := s.ListFindings(ctx, FindingFilter{}, 3, "")
	if err != nil || !p.HasNextPage || len(p.Items) != 3 {
		t.Fatalf("page 1: %v, %v", kinds(p), err)
	}
	p, err = s.ListFindings(ctx, FindingFilter{}, 3, p.EndCursor())
	if err != nil || p.HasNextPage || !reflect.DeepEqual(kinds(p), []string{"undecodable:bad record"}) {
		t.Fatalf("page 2: %v, %v", kinds(p), err)
	}
	if f := p.Items[0]; f.StreamID != nil || f.Seq != nil {
		t.Errorf("finding without stream: %+v", f)
	}
	p, err = s.ListFindings(ctx, FindingFilter{Kind: "gap"}, 10, "")
	if err != nil || !reflect.DeepEqual(kinds(p), []string{"gap:seq 4 missing", "gap:seq 2 missing"}) {
		t.Errorf("kind: %v, %v", kinds(p), err)
	}
	p, err = s.ListFindings(ctx, FindingFilter{StreamID: &s1}, 10, "")
	if err != nil || !reflect.DeepEqual(kinds(p), []string{"gap:seq 4 missing", "chain:chain broken"}) {
		t.Errorf("stream: %v, %v", kinds(p), err)
	}
	if *p.Items[0].StreamID != s1 || *p.Items[0].Seq != 4 {
		t.Errorf("finding: %+v", p.Items[0])
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
		got[0].PolicyParams != "{}" || got[0].Policy != "message" || got[1].Protocol != "STRATUM_V2" {
		t.Errorf("services: %+v", got)
	}
}
