package ledger

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/internal/pgtest"
)

func TestAddTariff(t *testing.T) {
	pool, _ := pgtest.DB(t)
	s, ctx := New(pool), context.Background()
	if err := s.PutService(ctx, Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC"}); err != nil {
		t.Fatal(err)
	}
	first, err := s.AddTariff(ctx, Tariff{Service: "eth", PricePerUnit: "0.000001", Currency: "upokt"})
	if err != nil || first.EffectiveFrom.Valid || first.PricePerUnit != "0.000001" {
		t.Fatalf("first tariff: %+v, %v; want in force since ever", first, err)
	}
	// The same price again (a YAML file read at every start): not stored twice.
	again, err := s.AddTariff(ctx, Tariff{Service: "eth", PricePerUnit: "0.0000010", Currency: "upokt"})
	if err != nil || again.ID != first.ID {
		t.Fatalf("same tariff again: %+v, %v; want the first one back", again, err)
	}
	// A new price: from the next minute, never in the past.
	next, err := s.AddTariff(ctx, Tariff{Service: "eth", PricePerUnit: "0.000002", Currency: "upokt"})
	if err != nil || !next.EffectiveFrom.Valid || !next.EffectiveFrom.V.After(time.Now()) || next.EffectiveFrom.V.Second() != 0 {
		t.Fatalf("new price: %+v, %v; want it from the next minute", next, err)
	}
	past := sql.Null[time.Time]{V: time.Now().Add(-time.Hour).Truncate(time.Minute), Valid: true}
	if _, err := s.AddTariff(ctx, Tariff{Service: "eth", PricePerUnit: "5", Currency: "upokt", EffectiveFrom: past}); !errors.Is(err, ErrTariffChange) {
		t.Fatalf("a price in the past: %v, want ErrTariffChange", err)
	}
	// A negotiated price: its own first row, so it may start in the past.
	if nego, err := s.AddTariff(ctx, Tariff{Service: "eth", Application: "app_1", PricePerUnit: "0.5", Currency: "upokt", EffectiveFrom: past}); err != nil || !nego.EffectiveFrom.V.Equal(past.V) {
		t.Fatalf("negotiated: %+v, %v", nego, err)
	}
	for name, bad := range map[string]Tariff{
		"negative":     {Service: "eth", PricePerUnit: "-1", Currency: "upokt", Application: "a"},
		"not a number": {Service: "eth", PricePerUnit: "lots", Currency: "upokt", Application: "b"},
		"too precise":  {Service: "eth", PricePerUnit: "1e30", Currency: "upokt", Application: "c"},
		"currency":     {Service: "eth", PricePerUnit: "1", Currency: "US$", Application: "d"},
		"no service":   {Service: "nope", PricePerUnit: "1", Currency: "USD"},
		"not a minute": {Service: "eth", PricePerUnit: "1", Currency: "USD", Application: "e", EffectiveFrom: sql.Null[time.Time]{V: past.V.Add(time.Second), Valid: true}},
	} {
		if _, err := s.AddTariff(ctx, bad); !IsInvalidInput(err) {
			t.Errorf("%s: %v, want invalid input", name, err)
		}
	}
	all, err := s.Tariffs(ctx, "eth")
	if err != nil || len(all) != 3 {
		t.Fatalf("tariffs: %+v, %v", all, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE tariffs SET price_per_unit = 0`); err == nil {
		t.Fatal("a tariff was updated in place")
	}
}

func TestAmounts(t *testing.T) {
	pool, _ := pgtest.DB(t)
	s, ctx := New(pool), context.Background()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO services (id, protocol) VALUES ('eth', 'WEBSOCKET_JSONRPC'), ('free', 'WEBSOCKET_JSONRPC')`,
		// eth: 0.5 since ever, 2 from 12:02; app1 negotiated 0.1 from 12:01; in upokt. A second currency from 12:03.
		`INSERT INTO tariffs (service, application, price_per_unit, currency, effective_from) VALUES
			('eth', '', 0.5, 'upokt', '-infinity'), ('eth', '', 2, 'upokt', '2026-11-01 12:02Z'),
			('eth', 'app1', 0.1, 'upokt', '2026-11-01 12:01Z'), ('eth', 'app2', 1, 'USD', '2026-11-01 12:03Z')`,
		// 10 units a minute for app1 and app2 from 12:00 to 12:03, and the free service.
		`INSERT INTO usage_minutes (minute, protocol, service, application, supplier, messages, relays, units, bytes)
			SELECT '2026-11-01 12:00Z'::timestamptz + m * interval '1 minute', 'WEBSOCKET_JSONRPC', sv, app, 'sup', 10, 10, 10, 100
			FROM generate_series(0, 3) m, unnest(array['app1', 'app2']) app, unnest(array['eth', 'free']) sv`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	for _, tc := range []struct {
		name string
		f    UsageFilter
		want []Amount
	}{
		// app1: 12:00 0.5, 12:01 0.1, 12:02 0.1 (its own beats the default's change), 12:03 0.1 → 8.
		// app2: 12:00 0.5, 12:01 0.5, 12:02 2 → 30 upokt; 12:03 1 USD → 10 USD.
		{"all", UsageFilter{Scope: All}, []Amount{{"USD", "10"}, {"upokt", "38"}}},
		{"app1", UsageFilter{Scope: All, Application: "app1"}, []Amount{{"upokt", "8"}}},
		{"app2 scope", UsageFilter{Scope: Scope{Application: "app2"}}, []Amount{{"USD", "10"}, {"upokt", "30"}}},
		{"window", UsageFilter{Scope: All, From: t0.Add(2 * time.Minute), To: t0.Add(3 * time.Minute)}, []Amount{{"upokt", "21"}}},
		{"no tariff", UsageFilter{Scope: All, Service: "free"}, []Amount{}},
		{"none", UsageFilter{}, []Amount{}},
	} {
		got, err := s.Amounts(ctx, tc.f)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestEnsureTariff(t *testing.T) {
	pool, _ := pgtest.DB(t)
	s, ctx := New(pool), context.Background()
	if err := s.PutService(ctx, Service{ID: "eth", Protocol: "WEBSOCKET_JSONRPC"}); err != nil {
		t.Fatal(err)
	}
	later := sql.Null[time.Time]{V: time.Now().Add(time.Hour).Truncate(time.Minute), Valid: true}
	declared := []Tariff{
		{Service: "eth", PricePerUnit: "0.001", Currency: "upokt"},
		{Service: "eth", PricePerUnit: "0.002", Currency: "upokt", EffectiveFrom: later},
	}
	for round := range 3 { // every start declares the same file
		for _, d := range declared {
			if _, err := s.EnsureTariff(ctx, d); err != nil {
				t.Fatalf("round %d: %+v: %v", round, d, err)
			}
		}
	}
	if all, err := s.Tariffs(ctx, "eth"); err != nil || len(all) != 2 {
		t.Fatalf("tariffs after three starts: %+v, %v", all, err)
	}
	if _, err := s.EnsureTariff(ctx, Tariff{Service: "eth", PricePerUnit: "0.005", Currency: "upokt"}); !errors.Is(err, ErrTariffDiffers) {
		t.Fatalf("a changed since-ever price: %v, want ErrTariffDiffers", err)
	}
	if _, err := s.EnsureTariff(ctx, Tariff{Service: "eth", PricePerUnit: "0.002", Currency: "USD", EffectiveFrom: later}); !errors.Is(err, ErrTariffDiffers) {
		t.Fatalf("a changed currency: %v, want ErrTariffDiffers", err)
	}
}
