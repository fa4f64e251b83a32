package jsonfield_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/examples/policy-jsonfield"
	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/meter/policy"
)

func resp(s string) *event.Message {
	return &event.Message{Direction: event.Direction_UPSTREAM_TO_CLIENT, Role: event.Role_RESPONSE, Payload: []byte(s), PayloadSize: uint64(len(s))}
}

func TestUnits(t *testing.T) {
	const receipt = `{"jsonrpc":"2.0","id":1,"result":{"gasUsed":"0x5208","logs":[{"size":7}]}}`
	for _, tc := range []struct {
		name, params string
		msg          *event.Message
		want         uint64
	}{
		{"hex gas exact", `{"field": "result.gasUsed", "divisor": 1000}`, resp(receipt), 21},      // 0x5208 = 21000
		{"hex gas rounded up", `{"field": "result.gasUsed", "divisor": 1024}`, resp(receipt), 21}, // 20.5 → 21
		{"divisor 1 by default", `{"field": "result.gasUsed"}`, resp(receipt), 21000},
		{"decimal number", `{"field": "result.n", "divisor": 10}`, resp(`{"result":{"n":101}}`), 11},
		{"array index", `{"field": "result.logs.0.size"}`, resp(receipt), 7},
		{"missing field", `{"field": "result.gasUsed"}`, resp(`{"jsonrpc":"2.0","id":1,"error":{"code":-32000}}`), 0},
		{"null field", `{"field": "result"}`, resp(`{"result":null}`), 0},
		{"index out of range", `{"field": "result.logs.9.size"}`, resp(receipt), 0},
		{"empty payload", `{"field": "result"}`, resp(""), 0},
		{"requests ignored by default", `{"field": "params.n"}`, &event.Message{Direction: event.Direction_CLIENT_TO_UPSTREAM, Payload: []byte(`{"params":{"n":3}}`), PayloadSize: 18}, 0},
		{"requests when asked", `{"field": "params.n", "direction": "request"}`, &event.Message{Direction: event.Direction_CLIENT_TO_UPSTREAM, Payload: []byte(`{"params":{"n":3}}`), PayloadSize: 18}, 3},
		{"max", `{"field": "result"}`, resp(`{"result":"0xffffffffffffffff"}`), 1<<64 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.New(jsonfield.Name, jsonfield.Version, json.RawMessage(tc.params))
			if err != nil {
				t.Fatal(err)
			}
			u, state, err := p.Units(&policy.Stream{}, nil, tc.msg)
			if err != nil || u != tc.want || state != nil {
				t.Fatalf("units %d state %x err %v, want %d", u, state, err, tc.want)
			}
		})
	}
}

func TestUnitsErrors(t *testing.T) {
	p, err := policy.New(jsonfield.Name, jsonfield.Version, json.RawMessage(`{"field": "result"}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*event.Message{
		"not json":     resp(`{"result":`),
		"negative":     resp(`{"result":-1}`),
		"fraction":     resp(`{"result":1.5}`),
		"too big":      resp(`{"result":18446744073709551616}`),
		"hex too big":  resp(`{"result":"0x10000000000000000"}`),
		"not hex":      resp(`{"result":"0xzz"}`),
		"plain string": resp(`{"result":"12"}`),
		"object":       resp(`{"result":{}}`),
		"truncated":    {Direction: event.Direction_UPSTREAM_TO_CLIENT, Payload: []byte(`{"res`), PayloadSize: 40},
	} {
		if u, _, err := p.Units(&policy.Stream{}, nil, m); err == nil || u != 0 {
			t.Errorf("%s: units %d err %v, want an error", name, u, err)
		}
	}
}

func TestBadParams(t *testing.T) {
	for params, want := range map[string]string{
		`{}`:                               "field: required",
		`{"field": "a..b"}`:                "empty path segment",
		`{"field": "a", "divisor": 0}`:     "divisor 0",
		`{"field": "a", "per": 3}`:         "unknown field",
		`{"field": "a", "direction": "x"}`: `direction "x"`,
	} {
		_, err := policy.New(jsonfield.Name, jsonfield.Version, json.RawMessage(params))
		var pe *policy.ParamsError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want a ParamsError saying %q", params, err, want)
		}
	}
}

func FuzzUnits(f *testing.F) {
	f.Add([]byte(`{"result":{"gasUsed":"0x5208"}}`))
	f.Add([]byte(`{"result":{"gasUsed":[1,2]}}`))
	f.Add([]byte(`[`))
	p, err := policy.New(jsonfield.Name, jsonfield.Version, json.RawMessage(`{"field": "result.gasUsed", "divisor": 7}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		u, state, err := p.Units(&policy.Stream{}, nil, resp(string(payload)))
		if state != nil || err != nil && u != 0 {
			t.Fatalf("units %d state %x err %v", u, state, err)
		}
	})
}
