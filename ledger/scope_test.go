package ledger

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestScope: every read applies its scope on top of its filter, and a
// filter cannot widen a scope.
func TestScope(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	app1, app2, supA := Scope{Application: "app1"}, Scope{Application: "app2"}, Scope{Supplier: "supA"}

	for _, tc := range []struct {
		name string
		f    UsageFilter
		want Usage
	}{
		{"application", UsageFilter{Scope: app2}, Usage{10, 20, 30, 40}},
		{"application filtering another", UsageFilter{Scope: app2, Application: "app1"}, Usage{}},
		{"supplier", UsageFilter{Scope: supA}, Usage{11, 22, 33, 44}},
		{"none", UsageFilter{Scope: None}, Usage{}},
	} {
		got, err := s.Usage(ctx, tc.f)
		if err != nil || got != tc.want {
			t.Errorf("usage %s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}

	streams := func(f StreamFilter) []byte {
		p, err := s.ListStreams(ctx, f, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		var ids []byte
		for _, st := range p.Items {
			ids = append(ids, st.StreamID[15])
		}
		return ids
	}
	if got := streams(StreamFilter{Scope: app2}); !reflect.DeepEqual(got, []byte{2}) {
		t.Errorf("streams of app2: %v", got)
	}
	if got := streams(StreamFilter{Scope: app2, Application: "app1"}); len(got) != 0 {
		t.Errorf("streams of app2 filtering app1: %v", got)
	}
	if got := streams(StreamFilter{Scope: None}); len(got) != 0 {
		t.Errorf("streams of none: %v", got)
	}
	if _, found, err := s.StreamByID(ctx, app2, s1); err != nil || found {
		t.Errorf("app2 reads s1: found %v, %v", found, err)
	}
	if st, found, err := s.StreamByID(ctx, app1, s1); err != nil || !found || st.StreamID != s1 {
		t.Errorf("app1 reads s1: found %v, %v", found, err)
	}
	if p, err := s.ListMessages(ctx, app2, s1, 10, ""); err != nil || len(p.Items) != 0 {
		t.Errorf("app2 lists s1's messages: %d, %v", len(p.Items), err)
	}
	if p, err := s.ListMessages(ctx, app1, s1, 10, ""); err != nil || len(p.Items) != 5 {
		t.Errorf("app1 lists s1's messages: %d, %v", len(p.Items), err)
	}

	relays, err := s.ListRelays(ctx, RelayFilter{Scope: supA}, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range relays.Items {
		if r.Supplier != "supA" {
			t.Errorf("supA sees relay of %s", r.Supplier)
		}
	}
	if len(relays.Items) != 4 {
		t.Errorf("supA: %d relays, want s1's 4", len(relays.Items))
	}
	if p, err := s.ListRelays(ctx, RelayFilter{Scope: None}, 100, ""); err != nil || len(p.Items) != 0 {
		t.Errorf("relays of none: %d, %v", len(p.Items), err)
	}

	details := func(f FindingFilter) []string {
		p, err := s.ListFindings(ctx, f, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		var d []string
		for _, x := range p.Items {
			d = append(d, x.Detail)
		}
		return d
	}
	// A restricted scope never sees a finding without a stream.
	if got := details(FindingFilter{Scope: app1}); !reflect.DeepEqual(got, []string{"seq 4 missing", "chain broken", "seq 2 missing"}) {
		t.Errorf("findings of app1: %v", got)
	}
	if got := details(FindingFilter{Scope: app2}); len(got) != 0 {
		t.Errorf("findings of app2: %v", got)
	}
	if got := details(FindingFilter{Scope: Scope{Supplier: "supB"}, StreamID: &s1}); len(got) != 0 {
		t.Errorf("findings of s1 for supB: %v", got)
	}
	if got := details(FindingFilter{Scope: All}); len(got) != 4 {
		t.Errorf("findings unrestricted: %v", got)
	}
}

func TestUsageSeries(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	priced := func(q UsageSeriesQuery) []UsageRow {
		t.Helper()
		if q.Limit == 0 {
			q.Limit = 100
		}
		rows, err := s.UsageSeries(ctx, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		return rows
	}
	// series is the rows without their amounts, which the cases below do
	// not check.
	series := func(q UsageSeriesQuery) []UsageRow {
		t.Helper()
		rows := priced(q)
		for i := range rows {
			rows[i].Amounts = nil
		}
		return rows
	}
	// The seed prices eth at 1e-18 upokt and pool at 12.5 USD a unit.
	got := priced(UsageSeriesQuery{Filter: UsageFilter{Scope: All}, GroupBy: []UsageGroup{GroupApplication}})
	want := []UsageRow{
		{Application: "app1", Usage: Usage{1101, 2202, 3303, 9000000000404},
			Amounts: []Amount{{"USD", "3750"}, {"upokt", "0.000000000000003003"}}},
		{Application: "app2", Usage: Usage{10, 20, 30, 40}, Amounts: []Amount{{"upokt", "0.00000000000000003"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("by application: %+v", got)
	}
	if got := priced(UsageSeriesQuery{GroupBy: []UsageGroup{GroupMethod}, Filter: UsageFilter{Scope: Scope{Supplier: "supA"}, From: t0, To: t0.Add(time.Hour)}}); len(got) != 1 ||
		!reflect.DeepEqual(got[0].Amounts, []Amount{{"upokt", "0.00000000000000004"}}) {
		t.Errorf("by method, priced: %+v", got)
	}
	// Without group nor window: the totals of Usage.
	if got := series(UsageSeriesQuery{Filter: UsageFilter{Scope: All}}); len(got) != 1 || got[0].Usage != (Usage{1111, 2222, 3333, 9000000000444}) {
		t.Errorf("totals: %+v", got)
	}
	// Scoped: app2 sees itself only, whatever it groups by.
	if got := priced(UsageSeriesQuery{Filter: UsageFilter{Scope: Scope{Application: "app2"}}, GroupBy: []UsageGroup{GroupApplication}}); !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("by application for app2: %+v", got)
	}
	// Minutes, by supplier then protocol.
	got = series(UsageSeriesQuery{Window: WindowMinute, GroupBy: []UsageGroup{GroupSupplier, GroupProtocol}, Filter: UsageFilter{Scope: All, Supplier: "supB"}})
	if len(got) != 2 || !got[0].Window.Equal(t0.Add(2*time.Minute)) || got[0].Protocol != "STRATUM_V2" || got[0].Supplier != "supB" ||
		got[0].Service != "" || got[1].Messages != 1000 {
		t.Errorf("by minute: %+v", got)
	}
	// Days of New York: t0 is 22:00 on January 1st there.
	got = series(UsageSeriesQuery{Filter: UsageFilter{Scope: All}, Window: WindowDay, TimeZone: "America/New_York"})
	if nyDay := time.Date(2026, 1, 1, 5, 0, 0, 0, time.UTC); len(got) != 1 || !got[0].Window.Equal(nyDay) || got[0].Messages != 1111 {
		t.Errorf("by New York day: %+v", got)
	}
	if got := series(UsageSeriesQuery{Filter: UsageFilter{Scope: All}, Window: WindowDay}); len(got) != 1 || !got[0].Window.Equal(t0.Truncate(24*time.Hour)) {
		t.Errorf("by UTC day: %+v", got)
	}
	// By method: from the messages that crossed (s1's seq 5 did not).
	got = series(UsageSeriesQuery{GroupBy: []UsageGroup{GroupMethod}, Filter: UsageFilter{Scope: Scope{Application: "app1"}, From: t0, To: t0.Add(time.Hour)}})
	if want := []UsageRow{{Method: "eth_call", Usage: Usage{9, 11, 47, 950}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("by method: %+v", got)
	}
	got = series(UsageSeriesQuery{GroupBy: []UsageGroup{GroupMethod, GroupService}, Window: WindowHour,
		Filter: UsageFilter{Scope: Scope{Supplier: "supA"}, From: t0, To: t0.Add(time.Hour)}})
	if want := []UsageRow{{Window: t0, Method: "eth_call", Service: "eth", Usage: Usage{4, 4, 40, 410}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("by method and service for supA: %+v", got)
	}

	var tooMany *TooManyRowsError
	if _, err := s.UsageSeries(ctx, UsageSeriesQuery{Filter: UsageFilter{Scope: All}, GroupBy: []UsageGroup{GroupApplication}, Limit: 1}); !errors.As(err, &tooMany) || tooMany.Limit != 1 {
		t.Errorf("over the limit: %v", err)
	}
	for name, q := range map[string]UsageSeriesQuery{
		"bad zone":              {TimeZone: "Mars/Olympus_Mons", Window: WindowDay, Limit: 10},
		"local zone":            {TimeZone: "Local", Limit: 10},
		"bad window":            {Window: "WEEK", Limit: 10},
		"bad group":             {GroupBy: []UsageGroup{"COLOR"}, Limit: 10},
		"group twice":           {GroupBy: []UsageGroup{GroupService, GroupService}, Limit: 10},
		"no limit":              {},
		"method without range":  {GroupBy: []UsageGroup{GroupMethod}, Limit: 10},
		"method over max range": {GroupBy: []UsageGroup{GroupMethod}, Filter: UsageFilter{Scope: All, From: t0, To: t0.Add(32 * 24 * time.Hour)}, Limit: 10},
	} {
		if _, err := s.UsageSeries(ctx, q); !IsInvalidInput(err) {
			t.Errorf("%s: %v, want invalid input", name, err)
		}
	}
}
