package ledger

import (
	"fmt"

	"github.com/cockroachdb/apd/v3"
)

// Money is exact: amounts are numeric(38, 18) in Postgres and apd decimals
// in Go (github.com/cockroachdb/apd/v3: arbitrary-precision decimal
// arithmetic with explicit rounding, so that Go computes exactly what
// Postgres stores and audit recomputes it the same way).

// Scale is the number of fractional digits of every amount.
const Scale = 18

// decimalContext computes exactly: 60 digits hold any product of a
// numeric(38, 18) price and an int64 count of units.
var decimalContext = apd.Context{Precision: 60, MaxExponent: apd.MaxExponent, MinExponent: apd.MinExponent,
	Traps: apd.DefaultTraps, Rounding: apd.RoundHalfUp}

// Line is a priced quantity of a transaction: Units (negative to take
// back) at Price per unit, with FeeBps basis points of it taken as fees.
type Line struct {
	Units  int64
	Price  string // an exact decimal
	FeeBps int64
}

// Split is what a transaction moves, as exact canonical decimals: Gross is
// what the application pays, Fee what the fees account takes and Supplier
// what the supplier is paid (Gross - Fee).
type Split struct {
	Gross, Fee, Supplier string
}

// Payout prices lines, the whole pricing rule of settlement: Gross is the
// exact sum of units × price; the fee is the exact sum of units × price ×
// fee_bps / 10000, rounded once, to Scale fractional digits, half away
// from zero; the supplier gets the rest. The settler and audit both price
// with it.
func Payout(lines ...Line) (Split, error) {
	c := decimalContext
	var gross, fee apd.Decimal
	for _, l := range lines {
		price, _, err := apd.NewFromString(l.Price)
		if err != nil {
			return Split{}, fmt.Errorf("ledger: payout: price %q: %w", l.Price, err)
		}
		if l.FeeBps < 0 || l.FeeBps > 10000 {
			return Split{}, fmt.Errorf("ledger: payout: fee of %d basis points", l.FeeBps)
		}
		var g, f apd.Decimal
		if _, err := c.Mul(&g, price, apd.New(l.Units, 0)); err != nil {
			return Split{}, fmt.Errorf("ledger: payout: %w", err)
		}
		if _, err := c.Add(&gross, &gross, &g); err != nil {
			return Split{}, fmt.Errorf("ledger: payout: %w", err)
		}
		// g × bps / 10000 is exact: bps × 10^-4.
		if _, err := c.Mul(&f, &g, apd.New(l.FeeBps, -4)); err != nil {
			return Split{}, fmt.Errorf("ledger: payout: %w", err)
		}
		if _, err := c.Add(&fee, &fee, &f); err != nil {
			return Split{}, fmt.Errorf("ledger: payout: %w", err)
		}
	}
	if _, err := c.Quantize(&fee, &fee, -Scale); err != nil {
		return Split{}, fmt.Errorf("ledger: payout: round the fee: %w", err)
	}
	var sup apd.Decimal
	if _, err := c.Sub(&sup, &gross, &fee); err != nil {
		return Split{}, fmt.Errorf("ledger: payout: %w", err)
	}
	return Split{Gross: canonical(&gross), Fee: canonical(&fee), Supplier: canonical(&sup)}, nil
}

// CanonicalDecimal returns s in the canonical form of amounts: no
// exponent, no trailing fractional zeros, no "+", "0" for zero (as
// Postgres prints trim_scale(numeric)).
func CanonicalDecimal(s string) (string, error) {
	d, _, err := apd.NewFromString(s)
	if err != nil {
		return "", fmt.Errorf("ledger: not a decimal: %q", s)
	}
	return canonical(d), nil
}

func canonical(d *apd.Decimal) string {
	var r apd.Decimal
	r.Reduce(d)
	if r.IsZero() {
		return "0"
	}
	return r.Text('f')
}

// isZero reports whether the canonical decimal s is zero.
func isZero(s string) bool { return s == "0" }

// negate returns -s for a canonical decimal s.
func negate(s string) string {
	switch {
	case s == "0":
		return s
	case s[0] == '-':
		return s[1:]
	}
	return "-" + s
}
