package graphql

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	gql "github.com/graph-gophers/graphql-go"

	"github.com/relaymeter/relaymeter/audit"
	"github.com/relaymeter/relaymeter/ledger"
)

// auditSDL is the schema of whatIf and auditFindings.
//
//go:embed audit.graphqls
var auditSDL string

// WhatIf prices a service's traffic in a window under a proposal, next to
// what it costs now (*audit.Pricer, over the server's Kafka and ledger).
type WhatIf interface {
	WhatIf(ctx context.Context, p audit.Proposal, from, to time.Time) ([]audit.WhatIfRow, error)
}

var _ WhatIf = (*audit.Pricer)(nil)

// JSON is the schema's JSON scalar: any JSON value, kept as its encoding.
type JSON struct{ json.RawMessage }

// ImplementsGraphQLType reports whether JSON implements the named scalar.
func (JSON) ImplementsGraphQLType(name string) bool { return name == "JSON" }

// UnmarshalGraphQL takes the value as the GraphQL library decoded it (a
// literal or a variable) and keeps its JSON encoding.
func (j *JSON) UnmarshalGraphQL(input any) error {
	b, err := json.Marshal(input)
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	j.RawMessage = b
	return nil
}

// MarshalJSON writes the value as it is.
func (j JSON) MarshalJSON() ([]byte, error) {
	if len(j.RawMessage) == 0 {
		return []byte("null"), nil
	}
	return j.RawMessage, nil
}

var errNoWhatIf = &codedError{msg: "what-if is not configured on this server (it needs the events log's Kafka)", code: CodeUnavailable}

type tariffInput struct {
	PricePerUnit string
	Currency     string
}

// WhatIf answers the whatIf query, for admins only.
func (r *resolver) WhatIf(ctx context.Context, args struct {
	Service  string
	Policy   *JSON
	Tariff   *tariffInput
	From, To Time
}) ([]*whatIfRowResolver, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if r.whatIf == nil {
		return nil, errNoWhatIf
	}
	p := audit.Proposal{Service: args.Service}
	if args.Policy != nil {
		pol, err := audit.ParsePolicy(args.Policy.RawMessage)
		if err != nil {
			return nil, badInput(err.Error())
		}
		p.Policy = pol
	}
	if t := args.Tariff; t != nil {
		p.Tariff = &audit.Price{PricePerUnit: t.PricePerUnit, Currency: t.Currency}
	}
	rows, err := r.whatIf.WhatIf(ctx, p, args.From.Time, args.To.Time)
	var inv *audit.InvalidProposalError
	if errors.As(err, &inv) {
		return nil, badInput(inv.Error())
	}
	if err != nil {
		return nil, fail(ctx, r.log, "whatIf", err)
	}
	out := make([]*whatIfRowResolver, len(rows))
	for i := range rows {
		out[i] = &whatIfRowResolver{rows[i]}
	}
	return out, nil
}

type whatIfRowResolver struct{ r audit.WhatIfRow }

func (w *whatIfRowResolver) Application() string { return w.r.Application }
func (w *whatIfRowResolver) Now() *whatIfUsageResolver {
	return &whatIfUsageResolver{w.r.Now, w.r.NowAmounts}
}
func (w *whatIfRowResolver) Proposed() *whatIfUsageResolver {
	return &whatIfUsageResolver{w.r.Proposed, w.r.ProposedAmounts}
}

type whatIfUsageResolver struct {
	u  ledger.Usage
	as []ledger.Amount
}

func (w *whatIfUsageResolver) Messages() Long { return Long(w.u.Messages) }
func (w *whatIfUsageResolver) Relays() Long   { return Long(w.u.Relays) }
func (w *whatIfUsageResolver) Units() Long    { return Long(w.u.Units) }
func (w *whatIfUsageResolver) Amount() []*amountResolver {
	out := make([]*amountResolver, len(w.as))
	for i, a := range w.as {
		out[i] = &amountResolver{a}
	}
	return out
}

type auditFindingFilterInput struct {
	Run         *gql.ID
	Kind, Table *string
}

// AuditFindings answers the auditFindings query, for admins only.
func (r *resolver) AuditFindings(ctx context.Context, args struct {
	First  *int32
	After  *string
	Filter *auditFindingFilterInput
}) (*connection[*auditFindingResolver], error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	var f ledger.AuditFindingFilter
	if in := args.Filter; in != nil {
		if in.Run != nil {
			id, err := strconv.ParseInt(string(*in.Run), 10, 64)
			if err != nil || id <= 0 {
				return nil, badInput("invalid filter.run: an audit run id")
			}
			f.RunID = id
		}
		f.Kind, f.Table = str(in.Kind), str(in.Table)
	}
	first, after := pageArgs{args.First, args.After}.page()
	p, err := r.store.ListAuditFindings(ctx, f, first, after)
	if err != nil {
		return nil, fail(ctx, r.log, "auditFindings", err)
	}
	return newConnection(p, func(row ledger.AuditFinding) *auditFindingResolver { return &auditFindingResolver{row} }), nil
}

type auditFindingResolver struct{ f ledger.AuditFinding }

func (a *auditFindingResolver) ID() gql.ID       { return gql.ID(strconv.FormatInt(a.f.ID, 10)) }
func (a *auditFindingResolver) Run() gql.ID      { return gql.ID(strconv.FormatInt(a.f.RunID, 10)) }
func (a *auditFindingResolver) Kind() string     { return a.f.Kind }
func (a *auditFindingResolver) Table() string    { return a.f.Table }
func (a *auditFindingResolver) Keys() JSON       { return JSON{a.f.Keys} }
func (a *auditFindingResolver) Expected() *JSON  { return optJSON(a.f.Expected) }
func (a *auditFindingResolver) Found() *JSON     { return optJSON(a.f.Found) }
func (a *auditFindingResolver) RecordedAt() Time { return Time{a.f.RecordedAt} }

func optJSON(b json.RawMessage) *JSON {
	if b == nil {
		return nil
	}
	return &JSON{b}
}
