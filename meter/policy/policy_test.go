package policy_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/meter/policy"
	"github.com/relaymeter/relaymeter/meter/policy/policytest"
)

func TestRegisterPanics(t *testing.T) {
	mustPanic := func(name string, d policy.Definition) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Fatalf("%s: policy.Register did not panic", name)
			}
		}()
		policy.Register(d)
	}
	ok := func(json.RawMessage) (policy.Policy, error) { return policy.Message{}, nil }
	mustPanic("empty name", policy.Definition{Name: "", Version: 1, New: ok})
	mustPanic("duplicate", policy.Definition{Name: policy.MessageName, Version: 1, New: ok})
	mustPanic("nil policy.New", policy.Definition{Name: "x-nil", Version: 1})
	mustPanic("zero version", policy.Definition{Name: "x-zero", Version: 0, New: ok})
	if _, found := policy.Lookup("x-nil"); found {
		t.Fatal("a rejected definition was registered")
	}
	policytest.Register()
	names := policy.Names()
	if !slices.IsSorted(names) || !slices.Contains(names, policy.MessageName) || !slices.Contains(names, policytest.LinesName) {
		t.Fatalf("policy.Names() = %v, want message and test-lines, sorted", names)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  string
		version int
		params  string
		want    error
		params2 bool // want a *policy.ParamsError
	}{
		{name: "message no params", policy: "message", version: 1},
		{name: "message empty object", policy: "message", version: 1, params: `{}`},
		{name: "message null", policy: "message", version: 1, params: `null`},
		{name: "message unknown field", policy: "message", version: 1, params: `{"n":1}`, params2: true},
		{name: "message trailing data", policy: "message", version: 1, params: `{} {}`, params2: true},
		{name: "message not an object", policy: "message", version: 1, params: `[1]`, params2: true},
		{name: "unknown policy", policy: "nope", version: 1, want: policy.ErrUnknownPolicy},
		{name: "unknown version", policy: "message", version: 2, want: policy.ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.New(tc.policy, tc.version, json.RawMessage(tc.params))
			var pe *policy.ParamsError
			switch {
			case tc.want != nil:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			case tc.params2:
				if !errors.As(err, &pe) || pe.Policy != tc.policy {
					t.Fatalf("err = %v, want a *policy.ParamsError for %s", err, tc.policy)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if p.Name() != tc.policy || p.Version() != tc.version {
					t.Fatalf("got %s v%d", p.Name(), p.Version())
				}
			}
		})
	}
}

type bounded struct {
	Max int `json:"max"`
}

func (b *bounded) Validate() error {
	if b.Max <= 0 {
		return errors.New("max must be positive")
	}
	return nil
}

func TestDecodeParamsValidates(t *testing.T) {
	b := bounded{Max: 3}
	if err := policy.DecodeParams(nil, &b); err != nil || b.Max != 3 {
		t.Fatalf("defaults: %v, %+v", err, b)
	}
	if err := policy.DecodeParams(json.RawMessage(`{"max":0}`), &b); err == nil {
		t.Fatal("max 0 validated")
	}
	if err := policy.DecodeParams(json.RawMessage(`{"max":7}`), &b); err != nil || b.Max != 7 {
		t.Fatalf("max 7: %v, %+v", err, b)
	}
}

func TestMessageUnits(t *testing.T) {
	p, err := policy.New(policy.MessageName, policy.MessageVersion, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []event.Direction{event.Direction_CLIENT_TO_UPSTREAM, event.Direction_UPSTREAM_TO_CLIENT} {
		for r := event.Role_ROLE_UNSPECIFIED; r <= event.Role_OTHER; r++ {
			units, state, err := p.Units(nil, []byte("ignored"), &event.Message{Direction: d, Role: r, WireSize: 100})
			if err != nil || units != 1 || state != nil {
				t.Fatalf("%v %v: units %d state %q err %v, want 1, nil, nil", d, r, units, state, err)
			}
		}
	}
}

// TestCarryShape shows the interface carries a stream's state: the same
// records split differently across messages yield the same units.
func TestCarryShape(t *testing.T) {
	var p policy.Policy = policytest.Lines{}
	for _, tc := range []struct {
		parts []string
		units []uint64
		rest  string
	}{
		{parts: []string{"a\nb\n"}, units: []uint64{2}},
		{parts: []string{"a", "\nb", "\n"}, units: []uint64{0, 1, 1}},
		{parts: []string{"ab", "c", "\nd"}, units: []uint64{0, 0, 1}, rest: "d"},
	} {
		var state []byte
		for i, part := range tc.parts {
			u, s, err := p.Units(nil, state, &event.Message{Payload: []byte(part)})
			if err != nil || u != tc.units[i] {
				t.Fatalf("%q part %d: units %d err %v, want %d", tc.parts, i, u, err, tc.units[i])
			}
			state = s
		}
		if string(state) != tc.rest {
			t.Fatalf("%q: carry %q, want %q", tc.parts, state, tc.rest)
		}
	}
}

// TestVersions: several versions of one policy are registered side by
// side; New builds the one asked for, Lookup names the latest.
func TestVersions(t *testing.T) {
	policytest.Register()
	for _, v := range []int{1, 2} {
		p, err := policy.New(policytest.ScaledName, v, json.RawMessage(`{"n": 3}`))
		if err != nil || p.Version() != v {
			t.Fatalf("v%d: %v, %v", v, p, err)
		}
		if u, _, _ := p.Units(nil, nil, &event.Message{}); u != 3 {
			t.Fatalf("v%d: %d units, want 3", v, u)
		}
	}
	if _, err := policy.New(policytest.ScaledName, 3, nil); !errors.Is(err, policy.ErrVersion) {
		t.Fatalf("v3: %v, want ErrVersion", err)
	}
	if d, ok := policy.Lookup(policytest.ScaledName); !ok || d.Version != 2 {
		t.Fatalf("Lookup: %+v, %v", d, ok)
	}
}
