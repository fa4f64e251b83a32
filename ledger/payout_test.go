package ledger

import "testing"

func TestPayout(t *testing.T) {
	for _, c := range []struct {
		lines                []Line
		gross, fee, supplier string
	}{
		{[]Line{{Units: 10, Price: "1", FeeBps: 0}}, "10", "0", "10"},
		{[]Line{{Units: 3, Price: "0.1", FeeBps: 250}}, "0.3", "0.0075", "0.2925"},
		// 1 unit at 10^-18 with 50%: the fee 0.5e-18 rounds half away from zero.
		{[]Line{{Units: 1, Price: "0.000000000000000001", FeeBps: 5000}}, "0.000000000000000001", "0.000000000000000001", "0"},
		{[]Line{{Units: -1, Price: "0.000000000000000001", FeeBps: 5000}}, "-0.000000000000000001", "-0.000000000000000001", "0"},
		// Rounded once per transaction, not per line: 3 × 0.5e-18 = 1.5e-18 → 2e-18.
		{[]Line{{Units: 1, Price: "0.000000000000000001", FeeBps: 5000}, {Units: 1, Price: "0.000000000000000001", FeeBps: 5000},
			{Units: 1, Price: "0.000000000000000001", FeeBps: 5000}}, "0.000000000000000003", "0.000000000000000002", "0.000000000000000001"},
		{[]Line{{Units: 7, Price: "12.5", FeeBps: 100}, {Units: -2, Price: "3", FeeBps: 0}}, "81.5", "0.875", "80.625"},
		{[]Line{{Units: 1000000, Price: "99999999999999999999.999999999999999999", FeeBps: 10000}},
			"99999999999999999999999999.999999999999", "99999999999999999999999999.999999999999", "0"},
		{nil, "0", "0", "0"},
	} {
		got, err := Payout(c.lines...)
		if err != nil || got != (Split{c.gross, c.fee, c.supplier}) {
			t.Errorf("Payout(%v) = %+v, %v; want %s %s %s", c.lines, got, err, c.gross, c.fee, c.supplier)
		}
	}
	if _, err := Payout(Line{Units: 1, Price: "x"}); err == nil {
		t.Error("Payout took a price that is not a decimal")
	}
	if _, err := Payout(Line{Units: 1, Price: "1", FeeBps: 10001}); err == nil {
		t.Error("Payout took a fee above 100%")
	}
}

func TestCanonicalDecimal(t *testing.T) {
	for in, want := range map[string]string{"12.500": "12.5", "100": "100", "1E+2": "100", "-0.010": "-0.01",
		"0.000000000000000001": "0.000000000000000001", "0.000": "0", "+3": "3"} {
		if got, err := CanonicalDecimal(in); err != nil || got != want {
			t.Errorf("CanonicalDecimal(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
