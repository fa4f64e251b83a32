package audit

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/relaymeter/relaymeter/ledger"
)

// pricedTraffic is traffic with tariffs for eth: 0.5 upokt a unit by
// default, 2 for app-b.
func pricedTraffic(t testing.TB) *env {
	t.Helper()
	e := metered(t)
	for _, tr := range []ledger.Tariff{{Service: "eth", PricePerUnit: "0.5", Currency: "upokt"},
		{Service: "eth", Application: "app-b", PricePerUnit: "2", Currency: "upokt"}} {
		if _, err := e.store.AddTariff(context.Background(), tr); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// whatIfLines renders rows as "app units now→proposed amounts now→proposed".
func whatIfLines(rows []WhatIfRow) []string {
	amounts := func(as []ledger.Amount) string {
		s := ""
		for _, a := range as {
			s += a.Value + " " + a.Currency + ";"
		}
		return s
	}
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s %d/%d→%d/%d %s→%s", r.Application, r.Now.Relays, r.Now.Units,
			r.Proposed.Relays, r.Proposed.Units, amounts(r.NowAmounts), amounts(r.ProposedAmounts)))
	}
	return out
}

func TestWhatIf(t *testing.T) {
	e := pricedTraffic(t)
	ctx := context.Background()
	cfg := Config{Brokers: e.brokers, Pool: e.pool, StreamIdleTimeout: idle}
	from, to := base, base.Add(2*60e9)
	// Per stream, now: 10 eth_call requests and 10 responses (method
	// eth_call, 5 relays each), an eth_blockNumber (1): 101 relays, 202
	// units at weight 2; three streams per application (app-b's extra
	// response never crossed: not billed).
	for _, tc := range []struct {
		name string
		p    Proposal
		want []string
	}{
		{"tariff", Proposal{Service: "eth", Tariff: &Price{PricePerUnit: "1", Currency: "upokt"}}, []string{
			"app-a 303/606→303/606 303 upokt;→606 upokt;",
			"app-b 303/606→303/606 1212 upokt;→606 upokt;"}},
		// The message policy: one relay per message, 21 per stream.
		{"policy", Proposal{Service: "eth", Policy: &ledger.Policy{Name: "message", Version: 1}}, []string{
			"app-a 303/606→63/126 303 upokt;→63 upokt;",
			"app-b 303/606→63/126 1212 upokt;→252 upokt;"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := WhatIf(ctx, WhatIfConfig{Config: cfg, Proposal: tc.p, From: from, To: to})
			if err != nil {
				t.Fatal(err)
			}
			got := whatIfLines(rows)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("what-if:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	// Nothing was written: the ledger's usage and tariffs are as before.
	if n := e.count(t, `SELECT count(*) FROM tariffs`); n != 2 {
		t.Errorf("%d tariffs after the what-ifs, want 2", n)
	}
	if n := e.count(t, `SELECT sum(units) FROM usage_minutes WHERE service = 'eth'`); n != 1212 {
		t.Errorf("ledger usage %d units after the what-ifs, want 1212", n)
	}
	for _, p := range []Proposal{
		{Service: "eth", Policy: &ledger.Policy{Name: "nope", Version: 1}},
		{Service: "eth", Policy: &ledger.Policy{Name: "method", Version: 1, Params: []byte(`{"bogus": 1}`)}},
		{Service: "eth", Tariff: &Price{PricePerUnit: "-1", Currency: "upokt"}},
		{Service: "eth", Tariff: &Price{PricePerUnit: "1", Currency: "no currency"}},
		{Service: "nope", Tariff: &Price{PricePerUnit: "1", Currency: "upokt"}},
		{Service: "eth"},
	} {
		_, err := WhatIf(ctx, WhatIfConfig{Config: cfg, Proposal: p, From: from, To: to})
		var inv *InvalidProposalError
		if !errors.As(err, &inv) {
			t.Errorf("proposal %+v: %v, want an InvalidProposalError", p, err)
		}
	}
}
