package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// Proposal is what a what-if prices one service's traffic under instead
// of what is recorded: a policy version or a tariff, exactly one.
type Proposal struct {
	Service string
	// Policy prices every stream of the service (whenever it opened);
	// its ID is ignored.
	Policy *ledger.Policy
	// Tariff is the service's only price, for every application and
	// minute.
	Tariff *Price
}

// Price is a proposed tariff: an exact decimal per unit and a currency.
type Price struct {
	PricePerUnit string `json:"price"`
	Currency     string `json:"currency"`
}

// InvalidProposalError is a proposal that cannot be priced under: an
// unknown policy or version, parameters it refuses, a price or currency
// the tariffs table refuses, an unconfigured service.
type InvalidProposalError struct{ Reason string }

func (e *InvalidProposalError) Error() string { return "audit: invalid proposal: " + e.Reason }

// ParsePolicy reads a proposed policy version from JSON: {"name": …,
// "version": …, "params": {…}}; version defaults to 1, params to none.
func ParsePolicy(b []byte) (*ledger.Policy, error) {
	var v struct {
		Name    string          `json:"name"`
		Version int32           `json:"version"`
		Params  json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, &InvalidProposalError{Reason: "policy: " + err.Error()}
	}
	if v.Version == 0 {
		v.Version = 1
	}
	return &ledger.Policy{Name: v.Name, Version: v.Version, Params: v.Params}, nil
}

// ParsePrice reads a proposed tariff from JSON: {"price": "0.5",
// "currency": "upokt"}.
func ParsePrice(b []byte) (*Price, error) {
	var p Price
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, &InvalidProposalError{Reason: "tariff: " + err.Error()}
	}
	return &p, nil
}

// WhatIfConfig configures a WhatIf: where the log and the ledger are, as
// for Run, and the proposal and the window [From, To) (whole minutes).
type WhatIfConfig struct {
	Config
	Proposal Proposal
	From, To time.Time
}

// WhatIfRow is one application's usage of the service in the window and
// what it costs, as metered and billed now and as it would be under the
// proposal.
type WhatIfRow struct {
	Application                 string
	Now, Proposed               ledger.Usage
	NowAmounts, ProposedAmounts []ledger.Amount
}

// maxWhatIfRows bounds the applications of one what-if.
const maxWhatIfRows = 10000

// WhatIf replays the whole log as Run does, with the proposal in place of
// the recorded policy or tariff of its service, into the run's temporary
// tables only, and returns per application (by name) the service's usage
// and amounts in the window now (the ledger's) and proposed (the
// replay's), both read by the ledger's own usage query. Nothing is
// written: no audit run is recorded either.
func WhatIf(ctx context.Context, cfg WhatIfConfig) ([]WhatIfRow, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := cfg.Proposal
	switch {
	case p.Service == "":
		return nil, &InvalidProposalError{Reason: "no service"}
	case (p.Policy == nil) == (p.Tariff == nil):
		return nil, &InvalidProposalError{Reason: "give a policy or a tariff, one of them"}
	case cfg.From.IsZero() || cfg.To.IsZero() || !cfg.From.Before(cfg.To):
		return nil, &InvalidProposalError{Reason: "give a window: from before to"}
	}
	store := ledger.New(cfg.Pool)
	services, _, err := store.Services(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: what-if: %w", err)
	}
	if !configured(services, p.Service) {
		return nil, &InvalidProposalError{Reason: fmt.Sprintf("service %q is not configured", p.Service)}
	}
	var lookups meter.Lookups
	var extra []string
	if p.Policy != nil {
		if _, err := policy.New(p.Policy.Name, int(p.Policy.Version), p.Policy.Params); err != nil {
			return nil, &InvalidProposalError{Reason: "policy: " + err.Error()}
		}
	} else {
		extra = append(extra, "tariffs")
	}
	sps, err := spans(ctx, cfg.Brokers, cfg.Topic)
	if err != nil {
		return nil, err
	}
	sc, err := newScratch(ctx, cfg.Pool, extra...)
	if err != nil {
		return nil, err
	}
	defer sc.close()
	lookups = sc.store
	if p.Policy != nil {
		pol := *p.Policy
		pol.ID = proposedPolicyID
		lookups = proposedLookups{Lookups: sc.store, service: p.Service, policy: pol}
	} else if err := sc.proposeTariff(ctx, p.Service, *p.Tariff); err != nil {
		return nil, err
	}
	var sum Summary
	commit := func(b *ledger.Batch) error { return sc.store.Commit(ctx, b) }
	if err := replay(ctx, cfg.Config, sps, lookups, commit, &sum); err != nil {
		return nil, err
	}
	q := ledger.UsageSeriesQuery{Filter: ledger.UsageFilter{Scope: ledger.All, Service: p.Service, From: cfg.From, To: cfg.To},
		GroupBy: []ledger.UsageGroup{ledger.GroupApplication}, Limit: maxWhatIfRows}
	now, err := store.UsageSeries(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audit: what-if: usage now: %w", err)
	}
	proposed, err := sc.store.UsageSeries(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audit: what-if: usage proposed: %w", err)
	}
	return mergeWhatIf(now, proposed), nil
}

func configured(services []ledger.Service, id string) bool {
	for _, s := range services {
		if s.ID == id {
			return true
		}
	}
	return false
}

// mergeWhatIf pairs the rows of now and proposed by application.
func mergeWhatIf(now, proposed []ledger.UsageRow) []WhatIfRow {
	by := map[string]*WhatIfRow{}
	row := func(app string) *WhatIfRow {
		r := by[app]
		if r == nil {
			r = &WhatIfRow{Application: app, NowAmounts: []ledger.Amount{}, ProposedAmounts: []ledger.Amount{}}
			by[app] = r
		}
		return r
	}
	for _, u := range now {
		r := row(u.Application)
		r.Now, r.NowAmounts = u.Usage, append(r.NowAmounts, u.Amounts...)
	}
	for _, u := range proposed {
		r := row(u.Application)
		r.Proposed, r.ProposedAmounts = u.Usage, append(r.ProposedAmounts, u.Amounts...)
	}
	out := make([]WhatIfRow, 0, len(by))
	for _, r := range by {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Application < out[j].Application })
	return out
}

// proposedPolicyID is the policies row id a proposed policy goes by in a
// what-if's temporary tables; no stored row has it.
const proposedPolicyID = -1

// proposedLookups are a replay's lookups with service's policy history
// replaced by one version, policy, in force since ever.
type proposedLookups struct {
	meter.Lookups
	service string
	policy  ledger.Policy
}

func (l proposedLookups) Services(ctx context.Context) ([]ledger.Service, time.Time, error) {
	rows, at, err := l.Lookups.Services(ctx)
	for i := range rows {
		if rows[i].ID == l.service {
			rows[i].Policy, rows[i].History = l.policy, []ledger.ServicePolicy{{Policy: l.policy}}
		}
	}
	return rows, at, err
}

func (l proposedLookups) Policy(ctx context.Context, id int64) (ledger.Policy, error) {
	if id == proposedPolicyID {
		return l.policy, nil
	}
	return l.Lookups.Policy(ctx, id)
}

// proposeTariff fills the scratch's tariffs with the ledger's, but for
// service, whose only tariff is p, in force since ever. The tariffs
// table's own checks judge the price and the currency.
func (s *scratch) proposeTariff(ctx context.Context, service string, p Price) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO pg_temp.tariffs SELECT * FROM `+s.ledgerTable("tariffs")+
		` WHERE service <> $1`, service); err != nil {
		return fmt.Errorf("audit: what-if: tariffs: %w", err)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO pg_temp.tariffs (service, application, price_per_unit, currency, effective_from)
		VALUES ($1, '', $2::numeric, $3, '-infinity')`, service, p.PricePerUnit, p.Currency)
	if err != nil {
		return &InvalidProposalError{Reason: fmt.Sprintf("tariff %s %s: %v", p.PricePerUnit, p.Currency, err)}
	}
	return nil
}

// Pricer runs what-ifs against one events log and ledger.
type Pricer struct {
	// Config says where the log and the ledger are, as for Run.
	Config Config
}

// WhatIf is WhatIf with p's configuration, the proposal and the window.
func (p *Pricer) WhatIf(ctx context.Context, prop Proposal, from, to time.Time) ([]WhatIfRow, error) {
	return WhatIf(ctx, WhatIfConfig{Config: p.Config, Proposal: prop, From: from, To: to})
}
