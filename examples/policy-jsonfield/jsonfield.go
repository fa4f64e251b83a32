// Package jsonfield is an example relaymeter policy: the units of a
// JSON-RPC response are a numeric field of it, divided by a divisor and
// rounded up, e.g. {"field": "result.gasUsed", "divisor": 1000} bills an
// eth_getTransactionReceipt by the kilo-gas it reports.
//
// Importing the package registers the policy as "jsonfield" version 1.
package jsonfield

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// Name is the name the policy registers under.
const Name = "jsonfield"

// Version is the version of its pricing rule.
const Version = 1

func init() {
	policy.Register(policy.Definition{Name: Name, Version: Version, New: New, Payload: true})
}

// Params are the policy's parameters.
type Params struct {
	// Field is the dotted path of the field in the JSON message:
	// "result.gasUsed", "result.0.size" (a number indexes an array).
	Field string `json:"field"`
	// Divisor divides the field's value; the quotient is rounded up. At
	// least 1; 1 when absent.
	Divisor uint64 `json:"divisor"`
	// Direction is the messages read: "response" (the default), "request"
	// or "both"; the others are 0 units.
	Direction policy.Direction `json:"direction"`
}

// Validate checks the path and the divisor.
func (p *Params) Validate() error {
	if p.Field == "" {
		return errors.New("field: required")
	}
	for _, s := range strings.Split(p.Field, ".") {
		if s == "" {
			return fmt.Errorf("field %q: an empty path segment", p.Field)
		}
	}
	if p.Divisor < 1 {
		return fmt.Errorf("divisor %d: must be at least 1", p.Divisor)
	}
	return p.Direction.Validate()
}

// JSONField is the policy: units from a numeric field of a message.
//
// The field may be a JSON number (a non-negative integer) or a string of
// hex digits after "0x", as Ethereum nodes return quantities. A message
// without the field (an error response, another method's result) is 0
// units; a message that is not JSON, a field that is not a non-negative
// integer, or a payload captured partially is an error.
type JSONField struct {
	path      []string
	divisor   uint64
	direction policy.Direction
}

// New builds the policy from its JSON parameters.
func New(raw json.RawMessage) (policy.Policy, error) {
	p := Params{Divisor: 1, Direction: policy.DirectionResponse}
	if err := policy.DecodeParams(raw, &p); err != nil {
		return nil, &policy.ParamsError{Policy: Name, Err: err}
	}
	return JSONField{path: strings.Split(p.Field, "."), divisor: p.Divisor, direction: p.Direction}, nil
}

// Name returns "jsonfield".
func (JSONField) Name() string { return Name }

// Version returns Version.
func (JSONField) Version() int { return Version }

// Units returns the field's value divided by the divisor, rounded up. It
// carries no state.
func (j JSONField) Units(_ *policy.Stream, _ []byte, m *event.Message) (uint64, []byte, error) {
	if !j.direction.Selects(m.Direction) {
		return 0, nil, nil
	}
	if uint64(len(m.Payload)) < m.PayloadSize {
		return 0, nil, fmt.Errorf("payload captured partially (%d of %d bytes): jsonfield needs whole payloads", len(m.Payload), m.PayloadSize)
	}
	if len(bytes.TrimSpace(m.Payload)) == 0 {
		return 0, nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(m.Payload))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return 0, nil, fmt.Errorf("payload: %w", err)
	}
	v, ok := lookup(doc, j.path)
	if !ok {
		return 0, nil, nil
	}
	n, err := quantity(v)
	if err != nil {
		return 0, nil, fmt.Errorf("field %s: %w", strings.Join(j.path, "."), err)
	}
	u := n / j.divisor
	if n%j.divisor != 0 {
		u++
	}
	return u, nil, nil
}

// lookup follows path through objects and arrays.
func lookup(v any, path []string) (any, bool) {
	for _, seg := range path {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[seg]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, v != nil
}

// quantity reads a non-negative integer of at most 64 bits from a JSON
// number or a "0x" hex string.
func quantity(v any) (uint64, error) {
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.ParseUint(string(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is not a non-negative integer of 64 bits", x)
		}
		return n, nil
	case string:
		h, ok := strings.CutPrefix(x, "0x")
		if !ok || h == "" || len(h) > 64 {
			return 0, fmt.Errorf("%q is not a 0x hex quantity", x)
		}
		n, ok := new(big.Int).SetString(h, 16)
		if !ok || !n.IsUint64() {
			return 0, fmt.Errorf("%q is not a hex quantity of 64 bits", x)
		}
		return n.Uint64(), nil
	}
	return 0, fmt.Errorf("a %T, not a number", v)
}

var _ policy.Policy = JSONField{}
