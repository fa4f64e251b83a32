package policy_test

import (
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// maxCarry bounds every carry the fuzzed policies may return.
const maxCarry = policy.BeamMaxInFlight * (policy.BeamMaxID + 1)

// fuzzStream feeds p the messages data cut into, alternating directions by
// dirs, from the carry state, checking that no carry outgrows maxCarry.
func fuzzStream(t *testing.T, p policy.Policy, state []byte, data []byte, cuts []byte, method string) {
	for i := 0; len(data) > 0 || i == 0; i++ {
		n := len(data)
		if i < len(cuts) {
			n = min(n, int(cuts[i]))
		}
		d := up
		if i%2 == 1 {
			d = down
		}
		m := &event.Message{Direction: d, Method: method, Payload: data[:n], PayloadSize: uint64(n)}
		_, next, err := p.Units(&policy.Stream{}, state, m)
		if err == nil {
			state = append(state[:0], next...)
		}
		if len(state) > maxCarry {
			t.Fatalf("carry of %d bytes", len(state))
		}
		data = data[n:]
	}
	if f, ok := p.(policy.Finisher); ok {
		_ = f.Remainder(state)
	}
}

func FuzzDelimiter(f *testing.F) {
	f.Add([]byte("a\r\nb\r"), []byte{3, 1}, []byte(nil))
	f.Add([]byte("\r\n\r\n"), []byte{1, 1, 1}, []byte{1, 0, 1, 0})
	f.Add([]byte("xxxxxxxxxx"), []byte{}, []byte{0x80})
	p := mustNew(f, "delimiter", `{"delimiter": "\r\n"}`)
	long := mustNew(f, "delimiter", `{"delimiter_hex": "`+"abababababababab"+`"}`)
	f.Fuzz(func(t *testing.T, data, cuts, state []byte) {
		fuzzStream(t, p, append([]byte(nil), state...), data, cuts, "")
		fuzzStream(t, long, append([]byte(nil), state...), data, cuts, "")
	})
}

func FuzzSv2Shares(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 2, 3})
	f.Add([]byte{})
	count := mustNew(f, "sv2-shares", `{"by": "count"}`)
	sum := mustNew(f, "sv2-shares", `{"by": "sum"}`)
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, p := range []policy.Policy{count, sum} {
			m := &event.Message{Direction: down, Method: "SubmitShares.Success", Payload: payload, PayloadSize: uint64(len(payload))}
			u, state, err := p.Units(&policy.Stream{}, nil, m)
			if state != nil || (err != nil && u != 0) {
				t.Fatalf("units %d state %x err %v", u, state, err)
			}
			if err == nil && len(payload) != 20 {
				t.Fatalf("a %d-byte payload decoded", len(payload))
			}
		}
	})
}

func FuzzBeamSolutions(f *testing.F) {
	f.Add([]byte(`{"id":"7","jsonrpc":"2.0","method":"solution","nonce":"`+hex16+`","output":"`+hex208+`"}`), []byte(nil), "solution")
	f.Add([]byte(`{"code":1,"description":"","id":"7","method":"result"}`), []byte{1, '7'}, "result")
	f.Add([]byte(`{"code":1,`), []byte{200}, "")
	p := mustNew(f, "beam-solutions", ``)
	f.Fuzz(func(t *testing.T, line, state []byte, method string) {
		for _, d := range []event.Direction{up, down} {
			m := &event.Message{Direction: d, Method: method, Payload: line, PayloadSize: uint64(len(line))}
			u, next, err := p.Units(&policy.Stream{}, state, m)
			if err != nil && u != 0 || u > 1 {
				t.Fatalf("units %d err %v", u, err)
			}
			if len(next) > maxCarry {
				t.Fatalf("carry of %d bytes", len(next))
			}
		}
	})
}
