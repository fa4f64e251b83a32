package graphql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	gql "github.com/graph-gophers/graphql-go"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// Amount answers Usage.amount: what the usage costs, per currency, at the
// tariffs in force at each minute it was metered.
func (u *usageResolver) Amount(ctx context.Context) ([]*amountResolver, error) {
	as, err := u.r.store.Amounts(ctx, u.f)
	if err != nil {
		return nil, fail(ctx, u.r.log, "usage amount", err)
	}
	out := make([]*amountResolver, len(as))
	for i, a := range as {
		out[i] = &amountResolver{a}
	}
	return out, nil
}

type amountResolver struct{ a ledger.Amount }

func (a *amountResolver) Currency() string { return a.a.Currency }
func (a *amountResolver) Value() string    { return a.a.Value }

// Tariffs answers Service.tariffs: the service's default prices to every
// role, and a price negotiated for an application to admins and to that
// application only.
func (s *serviceResolver) Tariffs(ctx context.Context) ([]*tariffResolver, error) {
	ts, err := s.r.store.Tariffs(ctx, s.s.ID)
	if err != nil {
		return nil, fail(ctx, s.r.log, "tariffs", err)
	}
	p := principalFrom(ctx)
	out := []*tariffResolver{}
	for _, t := range ts {
		if t.Application == "" || p.Role == identity.RoleAdmin || p.Role == identity.RoleApplication && p.Application == t.Application {
			out = append(out, &tariffResolver{t})
		}
	}
	return out, nil
}

type tariffResolver struct{ t ledger.Tariff }

func (t *tariffResolver) ID() gql.ID           { return gql.ID(strconv.FormatInt(t.t.ID, 10)) }
func (t *tariffResolver) Service() string      { return t.t.Service }
func (t *tariffResolver) PricePerUnit() string { return t.t.PricePerUnit }
func (t *tariffResolver) Currency() string     { return t.t.Currency }
func (t *tariffResolver) CreatedAt() Time      { return Time{t.t.CreatedAt} }

func (t *tariffResolver) Application() *gql.ID {
	if t.t.Application == "" {
		return nil
	}
	id := gql.ID(t.t.Application)
	return &id
}

func (t *tariffResolver) EffectiveFrom() *Time {
	if !t.t.EffectiveFrom.Valid {
		return nil
	}
	return &Time{t.t.EffectiveFrom.V}
}

// SetTariff adds a price for a service's units (admins only): the first
// price of a (service, application) is in force since ever, or from
// effectiveFrom; a later one from effectiveFrom or the next minute, never
// in the past.
func (r *resolver) SetTariff(ctx context.Context, args struct {
	Service       string
	Application   *gql.ID
	PricePerUnit  string
	Currency      string
	EffectiveFrom *Time
}) (*tariffResolver, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	t := ledger.Tariff{Service: args.Service, PricePerUnit: args.PricePerUnit, Currency: args.Currency}
	if args.Application != nil {
		t.Application = string(*args.Application)
	}
	if args.EffectiveFrom != nil {
		t.EffectiveFrom = sql.Null[time.Time]{V: args.EffectiveFrom.Time, Valid: true}
	}
	out, err := r.store.AddTariff(ctx, t)
	if errors.Is(err, ledger.ErrTariffChange) {
		return nil, badInput("invalid effectiveFrom: the service has a price already; a new one takes effect from the next minute on, so that no metered usage is priced again")
	}
	if err != nil {
		return nil, fail(ctx, r.log, "set tariff", err)
	}
	return &tariffResolver{out}, nil
}

// SetServicePolicy gives a service a policy version (admins only): the
// policy must build with the parameters; streams opened from the next
// minute on are priced with it, streams opened before keep theirs.
func (r *resolver) SetServicePolicy(ctx context.Context, args struct {
	Service string
	Policy  string
	Version *int32
	Params  *string
}) (*serviceResolver, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	p := ledger.Policy{Name: args.Policy, Params: json.RawMessage(`{}`)}
	if args.Params != nil {
		p.Params = json.RawMessage(*args.Params)
	}
	if args.Version != nil {
		p.Version = *args.Version
	} else if d, ok := policy.Lookup(args.Policy); ok {
		p.Version = int32(d.Version)
	}
	if !json.Valid(p.Params) {
		return nil, badInput("invalid params: not JSON")
	}
	if _, err := policy.New(p.Name, int(p.Version), p.Params); err != nil {
		return nil, badInput("invalid policy: " + err.Error())
	}
	err := r.store.SetServicePolicy(ctx, args.Service, p)
	switch {
	case errors.Is(err, ledger.ErrNoService):
		return nil, &codedError{msg: "set service policy: no such service", code: CodeNotFound}
	case errors.Is(err, ledger.ErrChangeTooSoon):
		return nil, badInput("invalid policy: the service's policy already changes at the next minute; change it again after that")
	case err != nil:
		return nil, fail(ctx, r.log, "set service policy", err)
	}
	rows, err := r.store.ListServices(ctx)
	if err != nil {
		return nil, fail(ctx, r.log, "services", err)
	}
	for _, row := range rows {
		if row.ID == args.Service {
			return &serviceResolver{s: row, r: r}, nil
		}
	}
	return nil, fail(ctx, r.log, "set service policy", errors.New("service vanished"))
}

// Versions answers Service.versions: the service's policy versions, oldest
// first, each with when it took effect.
func (s *serviceResolver) Versions(ctx context.Context) ([]*versionResolver, error) {
	h, err := s.r.store.ServiceHistory(ctx, s.s.ID)
	if err != nil {
		return nil, fail(ctx, s.r.log, "service versions", err)
	}
	out := make([]*versionResolver, len(h))
	for i, v := range h {
		out[i] = &versionResolver{v}
	}
	return out, nil
}

type versionResolver struct{ v ledger.ServicePolicy }

func (v *versionResolver) Policy() string       { return v.v.Policy.Name }
func (v *versionResolver) PolicyVersion() int32 { return v.v.Policy.Version }
func (v *versionResolver) PolicyParams() string { return string(v.v.Policy.Params) }

func (v *versionResolver) EffectiveFrom() *Time {
	if !v.v.EffectiveFrom.Valid {
		return nil
	}
	return &Time{v.v.EffectiveFrom.V}
}
