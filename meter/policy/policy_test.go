package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// lines is a test policy with carry: one unit per '\n'-terminated record of
// the payload, a partial record carried to the stream's next message.
type lines struct{}

func (lines) Name() string { return "test-lines" }
func (lines) Version() int { return 1 }
func (lines) Units(state []byte, m *event.Message) (uint64, []byte, error) {
	buf := append(append([]byte(nil), state...), m.Payload...)
	n := bytes.Count(buf, []byte{'\n'})
	rest := buf[bytes.LastIndexByte(buf, '\n')+1:]
	if len(rest) == 0 {
		rest = nil
	}
	return uint64(n), rest, nil
}

var _ Policy = lines{}

func TestRegisterPanics(t *testing.T) {
	mustPanic := func(name string, d Definition) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Fatalf("%s: Register did not panic", name)
			}
		}()
		Register(d)
	}
	ok := func(json.RawMessage) (Policy, error) { return Message{}, nil }
	mustPanic("empty name", Definition{Name: "", Version: 1, New: ok})
	mustPanic("duplicate", Definition{Name: MessageName, Version: 1, New: ok})
	mustPanic("nil New", Definition{Name: "x-nil", Version: 1})
	mustPanic("zero version", Definition{Name: "x-zero", Version: 0, New: ok})
	if _, found := Lookup("x-nil"); found {
		t.Fatal("a rejected definition was registered")
	}
	// The registry is process-wide: with -count=N this runs N times.
	if _, found := Lookup("test-lines"); !found {
		Register(Definition{Name: "test-lines", Version: 1, New: func(json.RawMessage) (Policy, error) { return lines{}, nil }})
	}
	names := Names()
	if len(names) < 2 || names[0] != MessageName && names[1] != MessageName {
		t.Fatalf("Names() = %v, want message and test-lines", names)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  string
		version int
		params  string
		want    error
		params2 bool // want a *ParamsError
	}{
		{name: "message no params", policy: "message", version: 1},
		{name: "message empty object", policy: "message", version: 1, params: `{}`},
		{name: "message null", policy: "message", version: 1, params: `null`},
		{name: "message unknown field", policy: "message", version: 1, params: `{"n":1}`, params2: true},
		{name: "message trailing data", policy: "message", version: 1, params: `{} {}`, params2: true},
		{name: "message not an object", policy: "message", version: 1, params: `[1]`, params2: true},
		{name: "unknown policy", policy: "nope", version: 1, want: ErrUnknownPolicy},
		{name: "unknown version", policy: "message", version: 2, want: ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.policy, tc.version, json.RawMessage(tc.params))
			var pe *ParamsError
			switch {
			case tc.want != nil:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			case tc.params2:
				if !errors.As(err, &pe) || pe.Policy != tc.policy {
					t.Fatalf("err = %v, want a *ParamsError for %s", err, tc.policy)
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
	if err := DecodeParams(nil, &b); err != nil || b.Max != 3 {
		t.Fatalf("defaults: %v, %+v", err, b)
	}
	if err := DecodeParams(json.RawMessage(`{"max":0}`), &b); err == nil {
		t.Fatal("max 0 validated")
	}
	if err := DecodeParams(json.RawMessage(`{"max":7}`), &b); err != nil || b.Max != 7 {
		t.Fatalf("max 7: %v, %+v", err, b)
	}
}

func TestMessageUnits(t *testing.T) {
	p, err := New(MessageName, MessageVersion, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []event.Direction{event.Direction_CLIENT_TO_UPSTREAM, event.Direction_UPSTREAM_TO_CLIENT} {
		for r := event.Role_ROLE_UNSPECIFIED; r <= event.Role_OTHER; r++ {
			units, state, err := p.Units([]byte("ignored"), &event.Message{Direction: d, Role: r, WireSize: 100})
			if err != nil || units != 1 || state != nil {
				t.Fatalf("%v %v: units %d state %q err %v, want 1, nil, nil", d, r, units, state, err)
			}
		}
	}
}

// TestCarryShape shows the interface carries a stream's state: the same
// records split differently across messages yield the same units.
func TestCarryShape(t *testing.T) {
	var p Policy = lines{}
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
			u, s, err := p.Units(state, &event.Message{Payload: []byte(part)})
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
