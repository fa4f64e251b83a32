// Package policytest holds what tests of policies and of the meter share:
// Lines, a policy that carries state across a stream's messages, and
// Scaled, one with parameters and two versions.
package policytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// LinesName is the name Register gives Lines.
const LinesName = "test-lines"

// Lines is a test policy with carry: one unit per '\n'-terminated record of
// the payload, a partial record carried to the stream's next message.
type Lines struct{}

// Name returns LinesName.
func (Lines) Name() string { return LinesName }

// Version returns 1.
func (Lines) Version() int { return 1 }

// Units counts the records the carry and m's payload complete.
func (Lines) Units(_ *policy.Stream, state []byte, m *event.Message) (uint64, []byte, error) {
	buf := append(append([]byte(nil), state...), m.Payload...)
	n := bytes.Count(buf, []byte{'\n'})
	rest := buf[bytes.LastIndexByte(buf, '\n')+1:]
	if len(rest) == 0 {
		rest = nil
	}
	return uint64(n), rest, nil
}

// Remainder describes the partial record carried at close.
func (Lines) Remainder(state []byte) string {
	return fmt.Sprintf("%d bytes after the last newline", len(state))
}

var (
	_ policy.Policy   = Lines{}
	_ policy.Finisher = Lines{}
)

var once sync.Once

// Register registers Lines as "test-lines" v1 and Scaled as "test-scaled"
// v1 and v2, once per process however often it is called (tests run with
// -count=N).
func Register() {
	once.Do(func() {
		policy.Register(policy.Definition{Name: LinesName, Version: 1,
			New: func(json.RawMessage) (policy.Policy, error) { return Lines{}, nil }})
		for v := 1; v <= 2; v++ {
			policy.Register(policy.Definition{Name: ScaledName, Version: v, New: newScaled(v)})
		}
	})
}

// ScaledName is the name Register gives Scaled, at versions 1 and 2.
const ScaledName = "test-scaled"

// ScaledParams are Scaled's parameters.
type ScaledParams struct {
	// N is the units of every message.
	N uint64 `json:"n"`
}

// Scaled is a test policy with parameters: N units per message. Version 2
// is the same rule, so that a test can change parameters under a new
// version.
type Scaled struct {
	N       uint64
	version int
}

// Name returns ScaledName.
func (Scaled) Name() string { return ScaledName }

// Version returns the version it was built as.
func (s Scaled) Version() int { return s.version }

// Units returns N.
func (s Scaled) Units(*policy.Stream, []byte, *event.Message) (uint64, []byte, error) {
	return s.N, nil, nil
}

var _ policy.Policy = Scaled{}

func newScaled(version int) func(json.RawMessage) (policy.Policy, error) {
	return func(raw json.RawMessage) (policy.Policy, error) {
		var p ScaledParams
		if err := policy.DecodeParams(raw, &p); err != nil {
			return nil, err
		}
		return Scaled{N: p.N, version: version}, nil
	}
}
