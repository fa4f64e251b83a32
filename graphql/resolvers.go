package graphql

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync"

	"github.com/google/uuid"
	gql "github.com/graph-gophers/graphql-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
)

// defaultFirst is the page size when a query gives none.
const defaultFirst = 50

// resolver is the root resolver: it holds the store, and every child
// resolver holds it and a row (or a key) and loads what it links lazily.
// Every root field reads as the caller of its context (principalFrom):
// the ledger applies scope(ctx) in its SQL, and the admin-only fields
// refuse other roles.
type resolver struct {
	store    *ledger.Store
	registry Registry // nil: no mutations, no admin lists
	log      *slog.Logger
	maxRows  int    // usageSeries' bound on rows
	whatIf   WhatIf // nil: whatIf answers UNAVAILABLE
}

// pageArgs are a connection's arguments.
type pageArgs struct {
	First *int32
	After *string
}

// page returns the page size and cursor of a, with their defaults.
func (a pageArgs) page() (int, string) {
	first, after := defaultFirst, ""
	if a.First != nil {
		first = int(*a.First)
	}
	if a.After != nil {
		after = *a.After
	}
	return first, after
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func timeOf(p *Time) (t Time) {
	if p != nil {
		t = *p
	}
	return t
}

// streamID parses an optional stream id argument.
func streamID(p *gql.ID) (*uuid.UUID, error) {
	if p == nil {
		return nil, nil
	}
	id, err := uuid.Parse(string(*p))
	if err != nil {
		return nil, badInput("invalid stream id: not a UUID")
	}
	return &id, nil
}

// connection is a page as a GraphQL cursor connection of resolvers R.
type connection[R any] struct {
	edges []*edge[R]
	info  *pageInfo
}

type edge[R any] struct {
	cursor string
	node   R
}

func (e *edge[R]) Cursor() string { return e.cursor }
func (e *edge[R]) Node() R        { return e.node }

func (c *connection[R]) Edges() []*edge[R]   { return c.edges }
func (c *connection[R]) PageInfo() *pageInfo { return c.info }

type pageInfo struct {
	hasNext bool
	end     string
}

func (p *pageInfo) HasNextPage() bool { return p.hasNext }
func (p *pageInfo) EndCursor() *string {
	if p.end == "" {
		return nil
	}
	return &p.end
}

// newConnection wraps each row of p in its resolver.
func newConnection[T ledger.Cursored, R any](p ledger.Page[T], wrap func(T) R) *connection[R] {
	c := &connection[R]{edges: make([]*edge[R], len(p.Items)), info: &pageInfo{hasNext: p.HasNextPage, end: p.EndCursor()}}
	for i, row := range p.Items {
		c.edges[i] = &edge[R]{cursor: row.Cursor(), node: wrap(row)}
	}
	return c
}

// Usage.

type usageFilterInput struct {
	Service, Application, Supplier, Protocol *string
	From, To                                 *Time
}

// usageFilter is in as the ledger takes it, in the caller's scope.
func usageFilter(ctx context.Context, in *usageFilterInput) ledger.UsageFilter {
	f := ledger.UsageFilter{Scope: scope(ctx)}
	if in != nil {
		f.Service, f.Application, f.Supplier, f.Protocol = str(in.Service), str(in.Application), str(in.Supplier), str(in.Protocol)
		f.From, f.To = timeOf(in.From).Time, timeOf(in.To).Time
	}
	return f
}

// Usage answers the usage query: the totals of the usage args.Filter
// selects within the scope of the caller of ctx (zero for a caller who
// may see none of it, as for usage that does not exist).
func (r *resolver) Usage(ctx context.Context, args struct{ Filter *usageFilterInput }) (*usageResolver, error) {
	f := usageFilter(ctx, args.Filter)
	u, err := r.store.Usage(ctx, f)
	if err != nil {
		return nil, fail(ctx, r.log, "usage", err)
	}
	return &usageResolver{u: u, f: f, r: r}, nil
}

// usageResolver is usage totals, and the filter and resolver to price
// them with when asked.
type usageResolver struct {
	u ledger.Usage
	f ledger.UsageFilter
	r *resolver
}

func (u *usageResolver) Messages() Long { return Long(u.u.Messages) }
func (u *usageResolver) Relays() Long   { return Long(u.u.Relays) }
func (u *usageResolver) Units() Long    { return Long(u.u.Units) }
func (u *usageResolver) Bytes() Long    { return Long(u.u.Bytes) }

// Relays.

type relayFilterInput struct {
	Service, Application, Supplier, Protocol *string
	Stream                                   *gql.ID
	From, To                                 *Time
	Pairing                                  *string
}

func (r *resolver) Relays(ctx context.Context, args struct {
	First  *int32
	After  *string
	Filter *relayFilterInput
}) (*connection[*relayResolver], error) {
	f := ledger.RelayFilter{Scope: scope(ctx)}
	if in := args.Filter; in != nil {
		id, err := streamID(in.Stream)
		if err != nil {
			return nil, err
		}
		f = ledger.RelayFilter{Scope: f.Scope, Service: str(in.Service), Application: str(in.Application), Supplier: str(in.Supplier),
			Protocol: str(in.Protocol), StreamID: id, From: timeOf(in.From).Time, To: timeOf(in.To).Time,
			Pairing: ledger.Pairing(str(in.Pairing))}
	}
	first, after := pageArgs{args.First, args.After}.page()
	p, err := r.store.ListRelays(ctx, f, first, after)
	if err != nil {
		return nil, fail(ctx, r.log, "relays", err)
	}
	return newConnection(p, func(row ledger.Relay) *relayResolver { return &relayResolver{r, row} }), nil
}

type relayResolver struct {
	root *resolver
	r    ledger.Relay
}

func (r *relayResolver) ID() gql.ID {
	id := r.r.ID()
	return gql.ID(hex.EncodeToString(id[:]))
}
func (r *relayResolver) StreamID() gql.ID  { return gql.ID(r.r.StreamID.String()) }
func (r *relayResolver) Seq() Long         { return Long(r.r.Seq) }
func (r *relayResolver) UnitIndex() int32  { return r.r.UnitIndex }
func (r *relayResolver) RequestSeq() *Long { return optLong(r.r.RequestSeq) }
func (r *relayResolver) ResponseSeq() *Long {
	return optLong(r.r.ResponseSeq)
}
func (r *relayResolver) Pairing() string      { return string(r.r.Pairing) }
func (r *relayResolver) Protocol() string     { return r.r.Protocol }
func (r *relayResolver) Service() string      { return r.r.Service }
func (r *relayResolver) Application() string  { return r.r.Application }
func (r *relayResolver) Supplier() string     { return r.r.Supplier }
func (r *relayResolver) Weight() Long         { return Long(r.r.Weight) }
func (r *relayResolver) Policy() string       { return r.r.Policy }
func (r *relayResolver) PolicyVersion() int32 { return r.r.PolicyVersion }
func (r *relayResolver) ObservedAt() Time     { return Time{r.r.ObservedAt} }
func (r *relayResolver) Stream(ctx context.Context) (*streamResolver, error) {
	return r.root.stream(ctx, r.r.StreamID)
}

// Streams.

type streamFilterInput struct {
	Service, Application, Supplier, Protocol *string
	From, To                                 *Time
	Open                                     *bool
}

func (r *resolver) Streams(ctx context.Context, args struct {
	First  *int32
	After  *string
	Filter *streamFilterInput
}) (*connection[*streamResolver], error) {
	f := ledger.StreamFilter{Scope: scope(ctx)}
	if in := args.Filter; in != nil {
		f = ledger.StreamFilter{Scope: f.Scope, Service: str(in.Service), Application: str(in.Application), Supplier: str(in.Supplier),
			Protocol: str(in.Protocol), From: timeOf(in.From).Time, To: timeOf(in.To).Time, Open: in.Open}
	}
	first, after := pageArgs{args.First, args.After}.page()
	p, err := r.store.ListStreams(ctx, f, first, after)
	if err != nil {
		return nil, fail(ctx, r.log, "streams", err)
	}
	return newConnection(p, func(row ledger.Stream) *streamResolver { return &streamResolver{r, row} }), nil
}

func (r *resolver) Stream(ctx context.Context, args struct{ ID gql.ID }) (*streamResolver, error) {
	id, err := streamID(&args.ID)
	if err != nil {
		return nil, err
	}
	return r.stream(ctx, *id)
}

// stream loads one stream; nil if there is none. Within a request, each
// stream is loaded once however many relays or findings link to it.
func (r *resolver) stream(ctx context.Context, id uuid.UUID) (*streamResolver, error) {
	load := func() (*streamResolver, error) {
		row, found, err := r.store.StreamByID(ctx, scope(ctx), id)
		if err != nil {
			return nil, fail(ctx, r.log, "stream", err)
		}
		if !found {
			return nil, nil
		}
		return &streamResolver{r, row}, nil
	}
	c, ok := ctx.Value(streamCacheKey{}).(*streamCache)
	if !ok {
		return load()
	}
	c.mu.Lock()
	e := c.m[id]
	if e == nil {
		e = &streamEntry{}
		c.m[id] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.s, e.err = load() })
	return e.s, e.err
}

// streamCache holds the streams one request has loaded.
type streamCache struct {
	mu sync.Mutex
	m  map[uuid.UUID]*streamEntry
}

type streamEntry struct {
	once sync.Once
	s    *streamResolver
	err  error
}

type streamCacheKey struct{}

// withStreamCache returns ctx with an empty stream cache for one request.
func withStreamCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, streamCacheKey{}, &streamCache{m: map[uuid.UUID]*streamEntry{}})
}

type streamResolver struct {
	root *resolver
	s    ledger.Stream
}

func (s *streamResolver) ID() gql.ID           { return gql.ID(s.s.StreamID.String()) }
func (s *streamResolver) Topic() string        { return s.s.Topic }
func (s *streamResolver) Partition() int32     { return s.s.Partition }
func (s *streamResolver) Protocol() string     { return s.s.Protocol }
func (s *streamResolver) Service() string      { return s.s.Service }
func (s *streamResolver) Application() string  { return s.s.Application }
func (s *streamResolver) Supplier() string     { return s.s.Supplier }
func (s *streamResolver) EdgeID() string       { return s.s.EdgeID }
func (s *streamResolver) ClientAddr() string   { return s.s.ClientAddr }
func (s *streamResolver) UpstreamAddr() string { return s.s.UpstreamAddr }
func (s *streamResolver) APIKeyID() *string {
	if s.s.APIKeyID == "" {
		return nil
	}
	return &s.s.APIKeyID
}
func (s *streamResolver) Policy(ctx context.Context) (string, error) {
	p, err := s.policy(ctx)
	return p.Name, err
}
func (s *streamResolver) PolicyVersion(ctx context.Context) (int32, error) {
	p, err := s.policy(ctx)
	return p.Version, err
}
func (s *streamResolver) policy(ctx context.Context) (ledger.Policy, error) {
	p, err := s.root.store.Policy(ctx, s.s.PolicyID)
	if err != nil {
		return p, fail(ctx, s.root.log, "policy", err)
	}
	return p, nil
}
func (s *streamResolver) ComputeUnits() Long       { return Long(s.s.ComputeUnits) }
func (s *streamResolver) OpenedAt() Time           { return Time{s.s.OpenedAt} }
func (s *streamResolver) ClosedAt() *Time          { return optTime(s.s.ClosedAt) }
func (s *streamResolver) CloseReason() *string     { return opt(s.s.CloseReason) }
func (s *streamResolver) CloseCode() *int32        { return opt(s.s.CloseCode) }
func (s *streamResolver) LastSeq() Long            { return Long(s.s.LastSeq) }
func (s *streamResolver) Chain() string            { return hex.EncodeToString(s.s.Chain) }
func (s *streamResolver) MessagesToUpstream() Long { return Long(s.s.MessagesToUpstream) }
func (s *streamResolver) BytesToUpstream() Long    { return Long(s.s.BytesToUpstream) }
func (s *streamResolver) MessagesToClient() Long   { return Long(s.s.MessagesToClient) }
func (s *streamResolver) BytesToClient() Long      { return Long(s.s.BytesToClient) }
func (s *streamResolver) Relays(ctx context.Context) (Long, error) {
	n, err := s.relays(ctx)
	return Long(n), err
}
func (s *streamResolver) Units(ctx context.Context) (Long, error) {
	n, err := s.relays(ctx)
	return Long(n * s.s.ComputeUnits), err
}

// relays is the stream's relays that crossed the edge.
func (s *streamResolver) relays(ctx context.Context) (int64, error) {
	n, err := s.root.store.CrossedRelays(ctx, &s.s)
	if err != nil {
		return 0, fail(ctx, s.root.log, "stream relays", err)
	}
	return n, nil
}
func (s *streamResolver) Duplicates() Long { return Long(s.s.Duplicates) }
func (s *streamResolver) Complete() *bool  { return opt(s.s.Complete) }
func (s *streamResolver) ForwardedToUpstreamThroughSeq() *Long {
	return optLong(s.s.ForwardedToUpstreamSeq)
}
func (s *streamResolver) ForwardedToClientThroughSeq() *Long {
	return optLong(s.s.ForwardedToClientSeq)
}
func (s *streamResolver) Messages(ctx context.Context, args pageArgs) (*connection[*messageResolver], error) {
	first, after := args.page()
	p, err := s.root.store.ListMessages(ctx, scope(ctx), s.s.StreamID, first, after)
	if err != nil {
		return nil, fail(ctx, s.root.log, "messages", err)
	}
	return newConnection(p, func(row ledger.Message) *messageResolver { return &messageResolver{row, &s.s} }), nil
}

type messageResolver struct {
	m ledger.Message
	s *ledger.Stream
}

func (m *messageResolver) StreamID() gql.ID       { return gql.ID(m.m.StreamID.String()) }
func (m *messageResolver) Seq() Long              { return Long(m.m.Seq) }
func (m *messageResolver) ObservedAt() Time       { return Time{m.m.ObservedAt} }
func (m *messageResolver) Direction() string      { return event.Direction(m.m.Direction).String() }
func (m *messageResolver) Role() string           { return event.Role(m.m.Role).String() }
func (m *messageResolver) Method() string         { return m.m.Method }
func (m *messageResolver) BatchSize() int32       { return m.m.BatchSize }
func (m *messageResolver) RpcID() string          { return m.m.RPCID }
func (m *messageResolver) SubscriptionID() string { return m.m.SubscriptionID }
func (m *messageResolver) WireSize() Long         { return Long(m.m.WireSize) }
func (m *messageResolver) PayloadSize() Long      { return Long(m.m.PayloadSize) }
func (m *messageResolver) Units() Long            { return Long(m.m.Units) }
func (m *messageResolver) Crossed() bool          { return m.m.Crossed(m.s) }
func (m *messageResolver) AbsorbedByEdge() bool   { return m.m.Absorbed }

// Origin is who wrote the message; from an edge that did not say, who its
// direction says.
func (m *messageResolver) Origin() string {
	switch o := event.Origin(m.m.Origin); {
	case o != event.Origin_ORIGIN_UNSPECIFIED:
		return o.String()
	case m.m.Response():
		return event.Origin_UPSTREAM.String()
	}
	return event.Origin_CLIENT.String()
}

// Findings.

type findingFilterInput struct {
	Kind   *string
	Stream *gql.ID
	Open   *bool
}

func (r *resolver) Findings(ctx context.Context, args struct {
	First  *int32
	After  *string
	Filter *findingFilterInput
}) (*connection[*findingResolver], error) {
	f := ledger.FindingFilter{Scope: scope(ctx)}
	if in := args.Filter; in != nil {
		id, err := streamID(in.Stream)
		if err != nil {
			return nil, err
		}
		f = ledger.FindingFilter{Scope: f.Scope, Kind: str(in.Kind), StreamID: id, Open: in.Open}
	}
	first, after := pageArgs{args.First, args.After}.page()
	p, err := r.store.ListFindings(ctx, f, first, after)
	if err != nil {
		return nil, fail(ctx, r.log, "findings", err)
	}
	return newConnection(p, func(row ledger.Finding) *findingResolver { return &findingResolver{r, row} }), nil
}

type findingResolver struct {
	root *resolver
	f    ledger.Finding
}

func (f *findingResolver) ID() gql.ID   { return gql.ID(strconv.FormatInt(f.f.ID, 10)) }
func (f *findingResolver) Kind() string { return f.f.Kind }
func (f *findingResolver) StreamID() *gql.ID {
	if !f.f.StreamID.Valid {
		return nil
	}
	id := gql.ID(f.f.StreamID.V.String())
	return &id
}
func (f *findingResolver) Stream(ctx context.Context) (*streamResolver, error) {
	if !f.f.StreamID.Valid {
		return nil, nil
	}
	return f.root.stream(ctx, f.f.StreamID.V)
}
func (f *findingResolver) Seq() *Long        { return optLong(f.f.Seq) }
func (f *findingResolver) Topic() *string    { return opt(f.f.Topic) }
func (f *findingResolver) Partition() *int32 { return opt(f.f.Partition) }
func (f *findingResolver) Offset() *Long     { return optLong(f.f.Offset) }
func (f *findingResolver) Detail() string    { return f.f.Detail }
func (f *findingResolver) ObservedAt() *Time { return optTime(f.f.ObservedAt) }
func (f *findingResolver) RecordedAt() Time  { return Time{f.f.RecordedAt} }
func (f *findingResolver) ResolvedAt() *Time { return optTime(f.f.ResolvedAt) }

// Quarantine.

// Quarantine is for admins only: quarantined records belong to no tenant
// until decoded.
func (r *resolver) Quarantine(ctx context.Context, args pageArgs) (*connection[*quarantinedResolver], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	first, after := args.page()
	p, err := r.store.ListQuarantine(ctx, first, after)
	if err != nil {
		return nil, fail(ctx, r.log, "quarantine", err)
	}
	return newConnection(p, func(row ledger.Quarantined) *quarantinedResolver { return &quarantinedResolver{row} }), nil
}

type quarantinedResolver struct{ q ledger.Quarantined }

func (q *quarantinedResolver) Topic() string       { return q.q.Topic }
func (q *quarantinedResolver) Partition() int32    { return q.q.Partition }
func (q *quarantinedResolver) Offset() Long        { return Long(q.q.Offset) }
func (q *quarantinedResolver) Key() string         { return base64.StdEncoding.EncodeToString(q.q.Key) }
func (q *quarantinedResolver) Value() string       { return base64.StdEncoding.EncodeToString(q.q.Value) }
func (q *quarantinedResolver) RecordTime() Time    { return Time{q.q.Time} }
func (q *quarantinedResolver) Error() string       { return q.q.Error }
func (q *quarantinedResolver) QuarantinedAt() Time { return Time{q.q.QuarantinedAt} }
func (q *quarantinedResolver) Headers() []*headerResolver {
	out := make([]*headerResolver, len(q.q.Headers))
	for i, h := range q.q.Headers {
		out[i] = &headerResolver{h}
	}
	return out
}

type headerResolver struct{ h ledger.Header }

func (h *headerResolver) Key() string   { return h.h.Key }
func (h *headerResolver) Value() string { return base64.StdEncoding.EncodeToString(h.h.Value) }

// Services.

// Services are readable by every role (their prices are what each pays
// or is paid), and by no caller without one.
func (r *resolver) Services(ctx context.Context) ([]*serviceResolver, error) {
	if scope(ctx).Empty() {
		return []*serviceResolver{}, nil
	}
	rows, err := r.store.ListServices(ctx)
	if err != nil {
		return nil, fail(ctx, r.log, "services", err)
	}
	out := make([]*serviceResolver, len(rows))
	for i, row := range rows {
		out[i] = &serviceResolver{s: row, r: r}
	}
	return out, nil
}

type serviceResolver struct {
	s ledger.ServiceRow
	r *resolver
}

func (s *serviceResolver) ID() string                 { return s.s.ID }
func (s *serviceResolver) Protocol() string           { return s.s.Protocol }
func (s *serviceResolver) Policy() string             { return s.s.Policy.Name }
func (s *serviceResolver) PolicyVersion() int32       { return s.s.Policy.Version }
func (s *serviceResolver) PolicyParams() string       { return string(s.s.Policy.Params) }
func (s *serviceResolver) PricePerUnit() string       { return s.s.PricePerUnit }
func (s *serviceResolver) ComputeUnitsPerRelay() Long { return Long(s.s.ComputeUnitsPerRelay) }
func (s *serviceResolver) SessionSeconds() int32      { return s.s.SessionSeconds }
func (s *serviceResolver) CreatedAt() Time            { return Time{s.s.CreatedAt} }
func (s *serviceResolver) UpdatedAt() Time            { return Time{s.s.UpdatedAt} }
