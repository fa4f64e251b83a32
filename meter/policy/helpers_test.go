package policy_test

import (
	"encoding/json"
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/meter/policy"
)

const (
	up   = event.Direction_CLIENT_TO_UPSTREAM
	down = event.Direction_UPSTREAM_TO_CLIENT
)

func mustNew(t testing.TB, name, params string) policy.Policy {
	t.Helper()
	p, err := policy.New(name, 1, json.RawMessage(params))
	if err != nil {
		t.Fatalf("%s %s: %v", name, params, err)
	}
	if p.Name() != name || p.Version() != 1 {
		t.Fatalf("built %s v%d, want %s v1", p.Name(), p.Version(), name)
	}
	return p
}

// units runs msgs through p as one stream and returns each message's units
// and the final carry.
func units(t testing.TB, p policy.Policy, msgs ...*event.Message) ([]uint64, []byte) {
	t.Helper()
	s := &policy.Stream{Protocol: "WEBSOCKET_JSONRPC", Service: "svc", Application: "app"}
	var state []byte
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		u, next, err := p.Units(s, state, m)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		out[i] = u
		state = append([]byte(nil), next...)
	}
	return out, state
}

func sum(u []uint64) (n uint64) {
	for _, x := range u {
		n += x
	}
	return n
}

func payload(d event.Direction, s string) *event.Message {
	return &event.Message{Direction: d, Payload: []byte(s), PayloadSize: uint64(len(s)), WireSize: uint64(len(s)) + 2}
}
