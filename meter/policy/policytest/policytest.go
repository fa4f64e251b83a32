// Package policytest holds what tests of policies and of the meter share:
// Lines, a policy that carries state across a stream's messages.
package policytest

import (
	"bytes"
	"encoding/json"
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
func (Lines) Units(state []byte, m *event.Message) (uint64, []byte, error) {
	buf := append(append([]byte(nil), state...), m.Payload...)
	n := bytes.Count(buf, []byte{'\n'})
	rest := buf[bytes.LastIndexByte(buf, '\n')+1:]
	if len(rest) == 0 {
		rest = nil
	}
	return uint64(n), rest, nil
}

var _ policy.Policy = Lines{}

var once sync.Once

// Register registers Lines as "test-lines" v1, once per process however
// often it is called (tests run with -count=N).
func Register() {
	once.Do(func() {
		policy.Register(policy.Definition{Name: LinesName, Version: 1,
			New: func(json.RawMessage) (policy.Policy, error) { return Lines{}, nil }})
	})
}
