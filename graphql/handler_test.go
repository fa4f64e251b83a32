package graphql

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	gql "github.com/graph-gophers/graphql-go"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/ledger"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const (
	adminKey = "test-admin-key"
	streamA  = "01900000-0000-7000-8000-00000000000a"
	streamB  = "01900000-0000-7000-8000-00000000000b"
	streamC  = "01900000-0000-7000-8000-00000000000c"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

func TestSchemaParses(t *testing.T) {
	s := gql.MustParseSchema(schemaSDL, &resolver{}, gql.UseStringDescriptions())
	res := s.Exec(context.Background(), `{ __schema { queryType { fields { name } } } }`, "", nil)
	if len(res.Errors) != 0 {
		t.Fatal(res.Errors)
	}
	var got struct {
		Schema struct {
			QueryType struct{ Fields []struct{ Name string } }
		} `json:"__schema"`
	}
	if err := json.Unmarshal(res.Data, &got); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range got.Schema.QueryType.Fields {
		names = append(names, f.Name)
	}
	if want := []string{"usage", "usageSeries", "relays", "streams", "stream", "findings", "quarantine", "services",
		"viewer", "applications", "suppliers", "apiKeys"}; !reflect.DeepEqual(names, want) {
		t.Errorf("query fields %v, want %v", names, want)
	}
}

func TestConfigValidate(t *testing.T) {
	store := ledger.New(nil)
	for _, c := range []Config{
		{AdminKey: "k"},
		{Store: store},
		{Store: store, AdminKey: "k", MaxDepth: -1},
		{Store: store, AdminKey: "k", MaxBodyBytes: -1},
		{Store: store, AdminKey: "k", RateBurst: -1},
		{Store: store, AdminKey: "k", MaxUsageRows: -1},
	} {
		if _, err := NewHandler(c); err == nil {
			t.Errorf("NewHandler(%+v): no error", c)
		}
	}
	if _, err := NewHandler(Config{Store: store, AdminKey: "k"}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// server seeds a database and serves the API over it on loopback.
func server(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	return serve(t, seeded(t), cfg)
}

// seeded returns a fresh database with the streams, messages, usage,
// findings and quarantine the tests expect.
func seeded(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, _ := pgtest.DB(t)
	ctx := context.Background()
	stmts := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO policies (id, name, version) VALUES (1, 'message', 1)`, nil},
		{`SELECT setval('policies_id_seq', 1)`, nil},
		{`INSERT INTO services (id, protocol) VALUES ('eth', 'WEBSOCKET_JSONRPC')`, nil},
		{`INSERT INTO service_policies (service, policy_id, effective_from) VALUES ('eth', 1, '-infinity')`, nil},
		{`INSERT INTO tariffs (service, price_per_unit, currency, effective_from) VALUES ('eth', 0.25, 'USD', '-infinity')`, nil},
		// A: open, five messages alternating sides, each paired (the first
		// through the stream's first counterpart). B: no messages. C:
		// closed, one-sided: seq 1 unpaired, seq 2 recorded but its close
		// says it never crossed.
		{`INSERT INTO streams (stream_id, topic, kafka_partition, protocol, service, application, supplier, edge_id,
			policy_id, compute_units, opened_at, state_version, last_seq, chain, last_observed_at, relays,
			first_counterpart_seq, closed_at, forwarded_to_upstream_seq, last_request_seq, last_response_seq) VALUES
			($1, 't', 0, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 'e1', 1, 10, $4, 1, 5, '\xab', $4, 5, 2, NULL, NULL, 5, 4),
			($2, 't', 1, 'STRATUM_V2', 'pool', 'app2', 'supB', 'e2', 1, 1, $4, 1, 0, '\xcd', $4, 0, NULL, NULL, NULL, NULL, NULL),
			($3, 't', 1, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 'e1', 1, 10, $4, 1, 2, '\xef', $4, 2, NULL, $4, 1, 2, NULL)`,
			[]any{streamA, streamB, streamC, t0}},
		{`INSERT INTO messages (stream_id, seq, observed_at, direction, role, method, wire_size, payload_size, units, counterpart_seq)
			SELECT $1, g, $2::timestamptz + g * interval '1 minute', 2 - g % 2, 2 - g % 2, 'eth_call', 100 + g, 90, 1,
				nullif(g - 1, 0)
			FROM generate_series(1, 5) g`, []any{streamA, t0}},
		{`INSERT INTO messages (stream_id, seq, observed_at, direction, role, method, wire_size, payload_size, units)
			SELECT $1, g, $2::timestamptz + (5 + g) * interval '1 minute', 1, 1, 'eth_call', 100, 90, 1
			FROM generate_series(1, 2) g`, []any{streamC, t0}},
		{`INSERT INTO usage_minutes (minute, protocol, service, application, supplier, messages, relays, units, bytes) VALUES
			($1, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 1, 2, 3, 4),
			($1::timestamptz + interval '1 minute', 'STRATUM_V2', 'pool', 'app2', 'supB', 10, 20, 30, 40),
			($1::timestamptz + interval '2 minutes', 'WEBSOCKET_JSONRPC', 'eth', 'app2', 'supA', 100, 200, 300, 9000000000000000)`,
			[]any{t0}},
		{`INSERT INTO findings (kind, stream_id, seq, detail) VALUES ('gap', $1, 3, 'seq 3 missing')`, []any{streamA}},
		{`INSERT INTO findings (kind, stream_id, seq, detail, resolved_at) VALUES ('gap', $1, 9, 'filled', $2)`, []any{streamA, t0}},
		{`INSERT INTO quarantine (topic, kafka_partition, kafka_offset, record_key, record_value, record_time, error)
			VALUES ('t', 1, 7, '\x6b', '\x00ff', $1, 'empty record')`, []any{t0}},
	}
	for _, st := range stmts {
		if _, err := pool.Exec(ctx, st.sql, st.args...); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	return pool
}

// serve serves the API over pool on loopback, with the admin key.
func serve(t *testing.T, pool *pgxpool.Pool, cfg Config) *httptest.Server {
	t.Helper()
	cfg.Store = ledger.New(pool)
	cfg.AdminKey = adminKey
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

type response struct {
	Status int
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// post sends a GraphQL query with the admin key and decodes the answer.
func post(t *testing.T, srv *httptest.Server, key, query string, vars map[string]any) response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return do(t, srv, key, bytes.NewReader(body))
}

func do(t *testing.T, srv *httptest.Server, key string, body io.Reader) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/graphql", body)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out response
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("response %d %q: %v", res.StatusCode, raw, err)
	}
	out.Status = res.StatusCode
	return out
}

// data posts a query that must succeed and decodes its data into v.
func data(t *testing.T, srv *httptest.Server, query string, vars map[string]any, v any) {
	t.Helper()
	res := post(t, srv, adminKey, query, vars)
	if res.Status != http.StatusOK || len(res.Errors) != 0 {
		t.Fatalf("%s: status %d, errors %+v", query, res.Status, res.Errors)
	}
	if err := json.Unmarshal(res.Data, v); err != nil {
		t.Fatalf("%s: %v in %s", query, err, res.Data)
	}
}

// wantError checks a response carries one error with the code.
func wantError(t *testing.T, what string, res response, status int, code string) {
	t.Helper()
	if res.Status != status || len(res.Errors) == 0 || res.Errors[0].Extensions.Code != code {
		t.Errorf("%s: status %d, errors %+v; want %d %s", what, res.Status, res.Errors, status, code)
	}
}

func TestUsage(t *testing.T) {
	srv := server(t, Config{})
	const q = `query($f: UsageFilter) { usage(filter: $f) { messages relays units bytes } }`
	type usage struct{ Messages, Relays, Units, Bytes int64 }
	for _, tc := range []struct {
		name   string
		filter map[string]any
		want   usage
	}{
		{"all", nil, usage{111, 222, 333, 9000000000000044}},
		{"service", map[string]any{"service": "eth"}, usage{101, 202, 303, 9000000000000004}},
		{"application", map[string]any{"application": "app2"}, usage{110, 220, 330, 9000000000000040}},
		{"supplier", map[string]any{"supplier": "supB"}, usage{10, 20, 30, 40}},
		{"protocol", map[string]any{"protocol": "WEBSOCKET_JSONRPC"}, usage{101, 202, 303, 9000000000000004}},
		{"from", map[string]any{"from": "2026-01-02T03:01:59Z"}, usage{110, 220, 330, 9000000000000040}},
		{"to", map[string]any{"to": "2026-01-02T03:01:59Z"}, usage{1, 2, 3, 4}},
		{"none", map[string]any{"service": "nope"}, usage{}},
	} {
		var got struct{ Usage usage }
		data(t, srv, q, map[string]any{"f": tc.filter}, &got)
		if got.Usage != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got.Usage, tc.want)
		}
	}
	// Counts are JSON numbers.
	res := post(t, srv, adminKey, `{ usage { bytes } }`, nil)
	if string(res.Data) != `{"usage":{"bytes":9000000000000044}}` {
		t.Errorf("usage data: %s", res.Data)
	}
	res = post(t, srv, adminKey, q, map[string]any{"f": map[string]any{"from": "yesterday"}})
	wantError(t, "bad time", res, http.StatusOK, CodeBadUserInput)
	if len(res.Errors) > 0 && !strings.Contains(res.Errors[0].Message, "RFC 3339") {
		t.Errorf("bad time: %q", res.Errors[0].Message)
	}
	wantError(t, "to before from", post(t, srv, adminKey,
		`{ usage(filter: {from: "2026-01-02T03:00:00Z", to: "2026-01-01T00:00:00Z"}) { bytes } }`, nil),
		http.StatusOK, CodeBadUserInput)
}

func TestRelaysPagination(t *testing.T) {
	srv := server(t, Config{})
	const q = `query($after: String) { relays(first: 2, after: $after) {
		edges { cursor node { id seq pairing observedAt stream { id application } } }
		pageInfo { hasNextPage endCursor } } }`
	type page struct {
		Relays struct {
			Edges []struct {
				Cursor string
				Node   struct {
					ID, Pairing, ObservedAt string
					Seq                     int64
					Stream                  struct{ ID, Application string }
				}
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
		}
	}
	var seqs []int64
	var after any
	relay3 := ledger.RelayID(uuid.MustParse(streamA), 3, 0)
	for pages := 1; ; pages++ {
		var p page
		data(t, srv, q, map[string]any{"after": after}, &p)
		for _, e := range p.Relays.Edges {
			seqs = append(seqs, e.Node.Seq)
			if e.Node.Stream.ID != streamA && e.Node.Stream.ID != streamC || e.Node.Stream.Application != "app1" {
				t.Errorf("relay %d: stream %+v", e.Node.Seq, e.Node.Stream)
			}
			if e.Node.Stream.ID == streamA && e.Node.Seq == 3 && (e.Node.Pairing != "PAIRED" ||
				e.Node.ID != hex.EncodeToString(relay3[:]) || e.Node.ObservedAt != "2026-01-02T03:03:00Z") {
				t.Errorf("relay 3: %+v", e.Node)
			}
			if e.Node.Stream.ID == streamC && e.Node.Pairing != "UNPAIRED" {
				t.Errorf("relay of C: %+v", e.Node)
			}
		}
		info := p.Relays.PageInfo
		if n := len(p.Relays.Edges); n > 0 && (info.EndCursor == nil || *info.EndCursor != p.Relays.Edges[n-1].Cursor) {
			t.Fatalf("page %d: end cursor %v", pages, info.EndCursor)
		}
		if !info.HasNextPage {
			break
		}
		if pages > 5 {
			t.Fatal("too many pages")
		}
		after = *info.EndCursor
	}
	// C's seq 2 never crossed: no relay.
	if want := []int64{1, 2, 3, 4, 5, 1}; !reflect.DeepEqual(seqs, want) {
		t.Fatalf("walked %v, want %v", seqs, want)
	}
	var filtered struct {
		Relays struct {
			Edges []struct{ Node struct{ Seq int64 } }
		}
	}
	data(t, srv, `{ relays(filter: {pairing: UNPAIRED, stream: "`+streamC+`", service: "eth"}) { edges { node { seq } } } }`, nil, &filtered)
	if len(filtered.Relays.Edges) != 1 || filtered.Relays.Edges[0].Node.Seq != 1 {
		t.Errorf("unpaired: %+v", filtered)
	}
	for _, bad := range []string{
		`{ relays(after: "not a cursor") { edges { cursor } } }`,
		`{ relays(first: 100000) { edges { cursor } } }`,
		`{ relays(filter: {stream: "nope"}) { edges { cursor } } }`,
	} {
		wantError(t, bad, post(t, srv, adminKey, bad, nil), http.StatusOK, CodeBadUserInput)
	}
}

func TestStreamAndMessages(t *testing.T) {
	srv := server(t, Config{})
	const q = `query($id: ID!, $after: String) { stream(id: $id) { id application computeUnits chain
		messages(first: 3, after: $after) { edges { node { seq wireSize direction } } pageInfo { hasNextPage endCursor } } } }`
	type page struct {
		Stream *struct {
			ID, Application, Chain string
			ComputeUnits           int64
			Messages               struct {
				Edges []struct {
					Node struct {
						Seq, WireSize int64
						Direction     string
					}
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
	}
	var p1, p2 page
	data(t, srv, q, map[string]any{"id": streamA}, &p1)
	if s := p1.Stream; s == nil || s.ID != streamA || s.Application != "app1" || s.ComputeUnits != 10 || s.Chain != "ab" ||
		len(s.Messages.Edges) != 3 || !s.Messages.PageInfo.HasNextPage || s.Messages.Edges[0].Node.WireSize != 101 {
		t.Fatalf("page 1: %+v", p1.Stream)
	}
	data(t, srv, q, map[string]any{"id": streamA, "after": p1.Stream.Messages.PageInfo.EndCursor}, &p2)
	if m := p2.Stream.Messages; len(m.Edges) != 2 || m.Edges[0].Node.Seq != 4 || m.Edges[1].Node.Seq != 5 || m.PageInfo.HasNextPage {
		t.Fatalf("page 2: %+v", m)
	}
	var none page
	data(t, srv, q, map[string]any{"id": "01900000-0000-7000-8000-0000000000ff"}, &none)
	if none.Stream != nil {
		t.Errorf("unknown stream: %+v", none.Stream)
	}
	wantError(t, "bad id", post(t, srv, adminKey, q, map[string]any{"id": "x"}), http.StatusOK, CodeBadUserInput)

	var streams struct {
		Streams struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	data(t, srv, `{ streams(filter: {application: "app2"}) { edges { node { id } } } }`, nil, &streams)
	if len(streams.Streams.Edges) != 1 || streams.Streams.Edges[0].Node.ID != streamB {
		t.Errorf("streams: %+v", streams)
	}
	var rest struct {
		Findings struct {
			Edges []struct {
				Node struct {
					Kind   string
					Seq    int64
					Stream struct{ ID string }
				}
			}
		}
		Services []struct{ ID, PricePerUnit string }
	}
	data(t, srv, `{ findings(filter: {kind: "gap", open: true}) { edges { node { kind seq stream { id } } } } services { id pricePerUnit } }`, nil, &rest)
	if f := rest.Findings.Edges; len(f) != 1 || f[0].Node.Seq != 3 || f[0].Node.Stream.ID != streamA {
		t.Errorf("findings: %+v", rest.Findings)
	}
	if s := rest.Services; len(s) != 1 || s[0].ID != "eth" || s[0].PricePerUnit != "0.250000000000000000" {
		t.Errorf("services: %+v", rest.Services)
	}
}

// TestWhatCrossed: a stream whose close says a message never crossed
// shows it, not billed, and counts only the relays that crossed; a resolved
// finding says when; the quarantine shows records whole.
func TestWhatCrossed(t *testing.T) {
	srv := server(t, Config{})
	var got struct {
		Stream struct {
			Relays, Units                 int64
			ForwardedToUpstreamThroughSeq *int64
			ForwardedToClientThroughSeq   *int64
			Policy                        string
			PolicyVersion                 int32
			Messages                      struct {
				Edges []struct {
					Node struct {
						Seq     int64
						Crossed bool
					}
				}
			}
		}
		Findings struct {
			Edges []struct {
				Node struct{ Detail, ResolvedAt string }
			}
		}
		Quarantine struct {
			Edges []struct {
				Node struct {
					Topic      string
					Partition  int32
					Offset     int64
					Key, Value string
					Error      string
					RecordTime string
				}
			}
		}
	}
	data(t, srv, `{ stream(id: "`+streamC+`") { relays units forwardedToUpstreamThroughSeq forwardedToClientThroughSeq
			policy policyVersion messages { edges { node { seq crossed } } } }
		findings(filter: {open: false}) { edges { node { detail resolvedAt } } }
		quarantine { edges { node { topic partition offset key value error recordTime } } } }`, nil, &got)
	st := got.Stream
	if st.Relays != 1 || st.Units != 10 || st.ForwardedToUpstreamThroughSeq == nil || *st.ForwardedToUpstreamThroughSeq != 1 ||
		st.ForwardedToClientThroughSeq != nil || st.Policy != "message" || st.PolicyVersion != 1 {
		t.Errorf("stream C: %+v", st)
	}
	if m := st.Messages.Edges; len(m) != 2 || !m[0].Node.Crossed || m[1].Node.Crossed {
		t.Errorf("stream C messages: %+v", m)
	}
	if f := got.Findings.Edges; len(f) != 1 || f[0].Node.Detail != "filled" || f[0].Node.ResolvedAt != "2026-01-02T03:00:00Z" {
		t.Errorf("resolved findings: %+v", f)
	}
	if q := got.Quarantine.Edges; len(q) != 1 || q[0].Node.Key != "aw==" || q[0].Node.Value != "AP8=" || q[0].Node.Offset != 7 ||
		q[0].Node.Error != "empty record" || q[0].Node.RecordTime != "2026-01-02T03:00:00Z" {
		t.Errorf("quarantine: %+v", q)
	}
}

func TestAuth(t *testing.T) {
	srv := server(t, Config{})
	const q = `{ usage { messages } }`
	wantError(t, "no key", post(t, srv, "", q, nil), http.StatusUnauthorized, CodeUnauthenticated)
	wantError(t, "wrong key", post(t, srv, "test-admin-kez", q, nil), http.StatusUnauthorized, CodeUnauthenticated)
	wantError(t, "prefix of key", post(t, srv, "test-admin", q, nil), http.StatusUnauthorized, CodeUnauthenticated)
	// Basic auth carrying the key is not bearer auth.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/graphql?query="+url.QueryEscape(q), nil)
	req.Header.Set("Authorization", "Basic "+adminKey)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("basic auth: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	// GET with the right key works.
	req.Header.Set("Authorization", "Bearer "+adminKey)
	res, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != `{"data":{"usage":{"messages":111}}}` {
		t.Errorf("GET: %d %s", res.StatusCode, body)
	}
}

func TestLimits(t *testing.T) {
	srv := server(t, Config{MaxDepth: 5, MaxQueryLength: 2000, MaxBodyBytes: 4000})
	// Depth 6: relays edges node stream messages edges.
	deep := `{ relays { edges { node { stream { messages { edges { cursor } } } } } } }`
	res := post(t, srv, adminKey, deep, nil)
	wantError(t, "too deep", res, http.StatusOK, CodeValidationFailed)
	if len(res.Errors) > 0 && !strings.Contains(res.Errors[0].Message, "max depth 5") {
		t.Errorf("too deep: %q", res.Errors[0].Message)
	}
	wantError(t, "too long", post(t, srv, adminKey, "{ usage { bytes } }"+strings.Repeat(" ", 2000), nil),
		http.StatusBadRequest, CodeQueryTooLong)
	big := `{"query": "{ usage { bytes } }", "variables": {"pad": "` + strings.Repeat("x", 5000) + `"}}`
	wantError(t, "body too large", do(t, srv, adminKey, strings.NewReader(big)), http.StatusRequestEntityTooLarge, CodePayloadTooLarge)
	wantError(t, "not JSON", do(t, srv, adminKey, strings.NewReader("{")), http.StatusBadRequest, CodeBadRequest)
	wantError(t, "syntax", post(t, srv, adminKey, "{ usage {", nil), http.StatusOK, CodeParseFailed)
	wantError(t, "unknown field", post(t, srv, adminKey, "{ nope }", nil), http.StatusOK, CodeValidationFailed)
	// Within the limits, it answers.
	var ok struct{ Usage struct{ Bytes int64 } }
	data(t, srv, `{ usage { bytes } }`, nil, &ok)
	if ok.Usage.Bytes == 0 {
		t.Error("no usage")
	}
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	var logs bytes.Buffer
	pool, dbURL := pgtest.DB(t)
	h, err := NewHandler(Config{Store: ledger.New(pool), AdminKey: adminKey, Logger: slogTo(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	pool.Close() // every query now fails
	res := post(t, srv, adminKey, `{ usage { bytes } }`, nil)
	wantError(t, "closed pool", res, http.StatusOK, CodeInternal)
	raw, _ := json.Marshal(res.Errors)
	if strings.Contains(string(raw), "pool") || strings.Contains(string(raw), "ledger") || strings.Contains(string(raw), dbURL) {
		t.Errorf("error leaks detail: %s", raw)
	}
	if !strings.Contains(logs.String(), "closed pool") || strings.Contains(logs.String(), adminKey) {
		t.Errorf("log: %s", logs.String())
	}
}

func TestPages(t *testing.T) {
	pool, _ := pgtest.DB(t)
	h, err := NewHandler(Config{Store: ledger.New(pool), AdminKey: adminKey})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) (int, string, string) {
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), string(body)
	}
	code, ctype, body := get("/")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, "graphiql") ||
		!strings.Contains(body, "localStorage") || !strings.Contains(body, `"Bearer "`) || strings.Contains(body, adminKey) {
		t.Errorf("GraphiQL page: %d %s %.200s", code, ctype, body)
	}
	// The page works offline: everything it loads is served here.
	if strings.Contains(body, "https://") || strings.Contains(body, "http://") {
		t.Errorf("GraphiQL page loads something from elsewhere: %s", body)
	}
	for _, asset := range []string{"graphiql.min.js", "graphiql.min.css", "react.production.min.js", "react-dom.production.min.js"} {
		if !strings.Contains(body, `"assets/`+asset+`"`) {
			t.Errorf("GraphiQL page does not load assets/%s", asset)
		}
		code, ctype, b := get("/assets/" + asset)
		if code != http.StatusOK || len(b) < 10000 || !(strings.Contains(ctype, "javascript") || strings.Contains(ctype, "css")) {
			t.Errorf("assets/%s: %d %s, %d bytes", asset, code, ctype, len(b))
		}
	}
	if code, _, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
	if code, _, _ := get("/nope"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// introspectionQuery is graphql-js 16's getIntrospectionQuery(), which
// GraphiQL sends to load the schema; its TypeRef nests ofType eight deep.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}`

// TestIntrospectionWithinDefaultDepth checks that GraphiQL can load the
// schema under the default depth limit.
func TestIntrospectionWithinDefaultDepth(t *testing.T) {
	srv := server(t, Config{})
	res := post(t, srv, adminKey, introspectionQuery, nil)
	if len(res.Errors) > 0 {
		t.Fatalf("introspection: %v", res.Errors)
	}
	if !strings.Contains(string(res.Data), `"Usage"`) {
		t.Fatalf("introspection result lacks the Usage type: %.300s", res.Data)
	}
}
