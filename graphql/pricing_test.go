package graphql

import (
	"math/big"
	"net/http"
	"strings"
	"testing"
)

// decimal is r as the API writes an exact decimal: no trailing zeros.
func decimal(r *big.Rat) string {
	s := r.FloatString(18)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// TestPricing: tariffs price usage per currency, a negotiated price beats
// the default for its application and is shown to it and admins only, and
// the admin mutations refuse what would reprice metered usage.
func TestPricing(t *testing.T) {
	tn := newTenants(t, Config{})
	srv := tn.srv
	type amount struct{ Currency, Value string }
	var u struct {
		Usage struct {
			Units  int64
			Amount []amount
		}
	}
	usage := func(key string) (int64, []amount) {
		t.Helper()
		as(t, srv, key, `{ usage(filter: {service: "eth"}) { units amount { currency value } } }`, nil, &u)
		return u.Usage.Units, u.Usage.Amount
	}
	// The seeded default: 0.25 USD per unit since ever.
	units1, amt := usage(tn.app1)
	if want := decimal(big.NewRat(units1, 4)); units1 == 0 || len(amt) != 1 || amt[0] != (amount{"USD", want}) {
		t.Fatalf("app1: %d units cost %+v, want USD %s", units1, amt, want)
	}
	// A price negotiated for app2, since ever: it beats the default.
	var st struct{ SetTariff struct{ Application *string } }
	as(t, srv, adminKey, `mutation { setTariff(service: "eth", application: "app2", pricePerUnit: "1.5", currency: "USD") { application } }`, nil, &st)
	if st.SetTariff.Application == nil || *st.SetTariff.Application != "app2" {
		t.Fatalf("setTariff: %+v", st)
	}
	units2, amt := usage(tn.app2)
	if want := decimal(new(big.Rat).Mul(big.NewRat(units2, 1), big.NewRat(3, 2))); len(amt) != 1 || amt[0] != (amount{"USD", want}) {
		t.Fatalf("app2: %d units cost %+v, want USD %s", units2, amt, want)
	}
	if _, amt := usage(tn.app1); amt[0].Value != decimal(big.NewRat(units1, 4)) {
		t.Fatalf("app1 after app2's price: %+v", amt)
	}
	// Grouped usage is priced row by row alike.
	var us struct {
		UsageSeries struct {
			Rows []struct {
				Application string
				Units       int64
				Amount      []amount
			}
		}
	}
	as(t, srv, adminKey, `{ usageSeries(filter: {service: "eth"}, groupBy: [APPLICATION]) { rows { application units amount { currency value } } } }`, nil, &us)
	for _, r := range us.UsageSeries.Rows {
		want := decimal(big.NewRat(r.Units, 4))
		if r.Application == "app2" {
			want = decimal(new(big.Rat).Mul(big.NewRat(r.Units, 1), big.NewRat(3, 2)))
		}
		if len(r.Amount) != 1 || r.Amount[0] != (amount{"USD", want}) {
			t.Errorf("usageSeries row %s: %d units cost %+v, want USD %s", r.Application, r.Units, r.Amount, want)
		}
	}
	if len(us.UsageSeries.Rows) != 2 {
		t.Errorf("usageSeries rows: %+v", us.UsageSeries.Rows)
	}
	// Who sees which tariffs.
	var sv struct {
		Services []struct {
			ID      string
			Tariffs []struct{ Application *string }
		}
	}
	for key, want := range map[string]int{adminKey: 2, tn.app1: 1, tn.app2: 2, tn.supA: 1} {
		as(t, srv, key, `{ services { id tariffs { application } } }`, nil, &sv)
		if len(sv.Services) != 1 || len(sv.Services[0].Tariffs) != want {
			t.Errorf("services seen with a key: %+v, want %d tariffs", sv, want)
		}
	}
	// Repricing the past, and non-admins, are refused.
	wantError(t, "a default in the past", post(t, srv, adminKey,
		`mutation { setTariff(service: "eth", pricePerUnit: "9", currency: "USD", effectiveFrom: "2020-01-01T00:00:00Z") { id } }`, nil),
		http.StatusOK, CodeBadUserInput)
	wantError(t, "an application setting a price", post(t, srv, tn.app1,
		`mutation { setTariff(service: "eth", pricePerUnit: "0", currency: "USD") { id } }`, nil), http.StatusOK, CodeForbidden)
	wantError(t, "a bad price", post(t, srv, adminKey,
		`mutation { setTariff(service: "eth", application: "app1", pricePerUnit: "-1", currency: "USD") { id } }`, nil),
		http.StatusOK, CodeBadUserInput)

	// A new policy version, from the next minute.
	var sp struct {
		SetServicePolicy struct {
			Policy   string
			Versions []struct {
				Policy, PolicyParams string
				EffectiveFrom        *string
			}
		}
	}
	as(t, srv, adminKey, `mutation { setServicePolicy(service: "eth", policy: "bytes", params: "{\"block\": 100}") {
		policy versions { policy policyParams effectiveFrom } } }`, nil, &sp)
	v := sp.SetServicePolicy.Versions
	if sp.SetServicePolicy.Policy != "message" || len(v) != 2 || v[0].EffectiveFrom != nil || v[1].Policy != "bytes" || v[1].EffectiveFrom == nil {
		t.Fatalf("setServicePolicy: %+v; want message in force now and bytes from the next minute", sp)
	}
	for name, q := range map[string]string{
		"unknown policy":    `mutation { setServicePolicy(service: "eth", policy: "nope") { id } }`,
		"bad params":        `mutation { setServicePolicy(service: "eth", policy: "bytes", params: "{\"block\": 0}") { id } }`,
		"params not JSON":   `mutation { setServicePolicy(service: "eth", policy: "bytes", params: "{") { id } }`,
		"again this minute": `mutation { setServicePolicy(service: "eth", policy: "bytes", params: "{\"block\": 200}") { id } }`,
	} {
		wantError(t, name, post(t, srv, adminKey, q, nil), http.StatusOK, CodeBadUserInput)
	}
	wantError(t, "unknown service", post(t, srv, adminKey, `mutation { setServicePolicy(service: "nope", policy: "message") { id } }`, nil),
		http.StatusOK, CodeNotFound)
	wantError(t, "a supplier setting a policy", post(t, srv, tn.supA, `mutation { setServicePolicy(service: "eth", policy: "message") { id } }`, nil),
		http.StatusOK, CodeForbidden)
}
