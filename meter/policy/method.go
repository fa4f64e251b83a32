package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// MethodName is the name of the method policy.
const MethodName = "method"

// MethodVersion is the current version of the method policy.
const MethodVersion = 1

func init() {
	Register(Definition{Name: MethodName, Version: MethodVersion, New: newMethod})
}

// MethodParams are the method policy's parameters.
type MethodParams struct {
	// Default is the price of a method not in Methods and of a message or
	// batch element without a method (responses, errors, notifications
	// pushed by the upstream); 1 when absent. 0 prices requests only.
	Default *uint64 `json:"default"`
	// Methods is the price of each JSON-RPC method by its exact name.
	Methods map[string]uint64 `json:"methods"`
}

// Validate refuses an empty method name.
func (p *MethodParams) Validate() error {
	for name := range p.Methods {
		if name == "" {
			return errors.New("methods: an empty method name")
		}
	}
	return nil
}

// MethodPolicy is the method policy: a message costs the price of its
// JSON-RPC method, a batch the sum of its elements' prices.
type MethodPolicy struct {
	def     uint64
	methods map[string]uint64
}

func newMethod(raw json.RawMessage) (Policy, error) {
	var p MethodParams
	if err := DecodeParams(raw, &p); err != nil {
		return nil, &ParamsError{Policy: MethodName, Err: err}
	}
	mp := MethodPolicy{def: 1, methods: make(map[string]uint64, len(p.Methods))}
	if p.Default != nil {
		mp.def = *p.Default
	}
	for k, v := range p.Methods {
		mp.methods[k] = v
	}
	return mp, nil
}

// Name returns "method".
func (MethodPolicy) Name() string { return MethodName }

// Version returns MethodVersion.
func (MethodPolicy) Version() int { return MethodVersion }

func (p MethodPolicy) price(method string) uint64 {
	if method == "" {
		return p.def
	}
	if v, ok := p.methods[method]; ok {
		return v
	}
	return p.def
}

// Units returns the price of m's method, or for a batch the sum of its
// elements' prices (an element beyond BatchMethods, or with an empty
// method, at the default). It carries no state; a sum past 2^64-1 is an
// error.
func (p MethodPolicy) Units(_ *Stream, _ []byte, m *event.Message) (uint64, []byte, error) {
	if m.BatchSize == 0 {
		return p.price(m.Method), nil, nil
	}
	var sum, carry uint64
	for _, name := range m.BatchMethods {
		sum, carry = bits.Add64(sum, p.price(name), 0)
		if carry != 0 {
			return 0, nil, errors.New("batch price overflows 64 bits")
		}
	}
	if missing := int64(m.BatchSize) - int64(len(m.BatchMethods)); missing > 0 {
		hi, lo := bits.Mul64(uint64(missing), p.def)
		if hi != 0 {
			return 0, nil, errors.New("batch price overflows 64 bits")
		}
		sum, carry = bits.Add64(sum, lo, 0)
		if carry != 0 {
			return 0, nil, fmt.Errorf("batch of %d: price overflows 64 bits", m.BatchSize)
		}
	}
	return sum, nil, nil
}

var _ Policy = MethodPolicy{}
