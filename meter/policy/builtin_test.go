package policy_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/meter/policy"
)

func TestBadParams(t *testing.T) {
	for _, tc := range []struct {
		policy, params, want string
	}{
		{"bytes", `{"block": 0}`, "block 0"},
		{"bytes", `{"blocks": 10}`, "unknown field"},
		{"bytes", `{"count": "frames"}`, `count "frames"`},
		{"bytes", `{"direction": "up"}`, `direction "up"`},
		{"bytes", `{"block": -1}`, "cannot unmarshal"},
		{"delimiter", `{"delimiter_hex": "0g"}`, "delimiter_hex"},
		{"delimiter", `{"delimiter_hex": "0d0"}`, "delimiter_hex"},
		{"delimiter", `{"delimiter": ""}`, "delimiter of 0 bytes"},
		{"delimiter", `{"delimiter": "\n", "delimiter_hex": "0a"}`, "exclusive"},
		{"delimiter", `{"delimiter_hex": "` + strings.Repeat("00", 65) + `"}`, "delimiter of 65 bytes"},
		{"delimiter", `{"sep": "\n"}`, "unknown field"},
		{"method", `{"methods": {"": 3}}`, "empty method name"},
		{"method", `{"default": -1}`, "cannot unmarshal"},
		{"method", `{"price": 1}`, "unknown field"},
		{"expr", `{}`, "expression: empty"},
		{"expr", `{"expression": "1 +"}`, "1:4"},
		{"expr", `{"expression": "wire_size +\n  nope"}`, "2:3"},
		{"expr", `{"expression": "method"}`, "type string: want int"},
		{"expr", `{"expression": "wire_size > 3"}`, "type bool: want int"},
		{"expr", `{"expression": "1", "cost": 3}`, "unknown field"},
		{"sv2-shares", `{"by": "difficulty"}`, `by "difficulty"`},
		{"beam-solutions", `{"x": 1}`, "unknown field"},
	} {
		t.Run(tc.policy+" "+tc.params, func(t *testing.T) {
			_, err := policy.New(tc.policy, 1, json.RawMessage(tc.params))
			var pe *policy.ParamsError
			if !errors.As(err, &pe) || pe.Policy != tc.policy {
				t.Fatalf("err = %v, want a *ParamsError of %s", err, tc.policy)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	for _, name := range []string{"bytes", "delimiter", "method", "sv2-shares", "beam-solutions"} {
		for _, params := range []string{"", "{}", "null"} {
			mustNew(t, name, params)
		}
	}
}

func TestBytes(t *testing.T) {
	m := func(d event.Direction, role event.Role, wire, pl uint64) *event.Message {
		return &event.Message{Direction: d, Role: role, WireSize: wire, PayloadSize: pl}
	}
	for _, tc := range []struct {
		name, params string
		msg          *event.Message
		want         uint64
	}{
		{"default block 1024 wire", `{}`, m(up, event.Role_REQUEST, 1025, 1), 2},
		{"101 in 100", `{"block": 100}`, m(up, event.Role_REQUEST, 101, 0), 2},
		{"100 in 100", `{"block": 100}`, m(up, event.Role_REQUEST, 100, 0), 1},
		{"1 in 100", `{"block": 100}`, m(up, event.Role_REQUEST, 1, 0), 1},
		{"empty", `{"block": 100}`, m(up, event.Role_REQUEST, 0, 0), 0},
		{"payload", `{"block": 10, "count": "payload"}`, m(up, event.Role_REQUEST, 1000, 11), 2},
		{"payload empty", `{"block": 10, "count": "payload"}`, m(up, event.Role_REQUEST, 1000, 0), 0},
		{"block 1", `{"block": 1}`, m(down, event.Role_RESPONSE, 7, 0), 7},
		{"huge", `{"block": 1}`, m(down, event.Role_RESPONSE, 1<<64-1, 0), 1<<64 - 1},
		{"huge rounded", `{"block": 2}`, m(down, event.Role_RESPONSE, 1<<64-1, 0), 1 << 63},
		{"request keeps request", `{"block": 1, "direction": "request"}`, m(up, event.Role_REQUEST, 5, 0), 5},
		{"request drops response", `{"block": 1, "direction": "request"}`, m(down, event.Role_RESPONSE, 5, 0), 0},
		// A notification the client sends is request side whatever its role.
		{"request by direction not role", `{"block": 1, "direction": "request"}`, m(up, event.Role_RESPONSE, 5, 0), 5},
		{"response by direction not role", `{"block": 1, "direction": "response"}`, m(down, event.Role_REQUEST, 5, 0), 5},
		{"response drops request", `{"block": 1, "direction": "response"}`, m(up, event.Role_REQUEST, 5, 0), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, state := units(t, mustNew(t, "bytes", tc.params), tc.msg)
			if got[0] != tc.want || state != nil {
				t.Fatalf("units = %d state %x, want %d and no state", got[0], state, tc.want)
			}
		})
	}
}

func TestMethod(t *testing.T) {
	const prices = `"methods": {"eth_getLogs": 50, "eth_call": 5, "free": 0}`
	rpc := func(d event.Direction, method string, batch ...string) *event.Message {
		return &event.Message{Direction: d, Method: method, BatchSize: uint32(len(batch)), BatchMethods: batch}
	}
	for _, tc := range []struct {
		name, params string
		msg          *event.Message
		want         uint64
	}{
		{"priced", `{` + prices + `}`, rpc(up, "eth_getLogs"), 50},
		{"zero price", `{` + prices + `}`, rpc(up, "free"), 0},
		{"unknown takes default 1", `{` + prices + `}`, rpc(up, "eth_chainId"), 1},
		{"response takes default", `{"default": 2, ` + prices + `}`, rpc(down, ""), 2},
		{"default 0 prices requests only", `{"default": 0, ` + prices + `}`, rpc(down, ""), 0},
		{"default 0 unknown", `{"default": 0, ` + prices + `}`, rpc(up, "eth_chainId"), 0},
		{"case matters", `{` + prices + `}`, rpc(up, "ETH_CALL"), 1},
		{"batch", `{` + prices + `}`, rpc(up, "", "eth_call", "eth_getLogs", "eth_chainId"), 56},
		{"batch of responses", `{"default": 3, ` + prices + `}`, rpc(down, "", "", "", ""), 9},
		{"batch of responses default 0", `{"default": 0, ` + prices + `}`, rpc(down, "", "", ""), 0},
		{"batch methods short", `{"default": 2, ` + prices + `}`,
			&event.Message{Direction: up, BatchSize: 3, BatchMethods: []string{"eth_call"}}, 9},
		{"no params", ``, rpc(up, "eth_call"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := units(t, mustNew(t, "method", tc.params), tc.msg)
			if got[0] != tc.want {
				t.Fatalf("units = %d, want %d", got[0], tc.want)
			}
		})
	}
	p := mustNew(t, "method", `{"methods": {"big": 18446744073709551615}}`)
	if _, _, err := p.Units(nil, nil, rpc(up, "", "big", "big")); err == nil || !strings.Contains(err.Error(), "overflow") {
		t.Fatalf("overflowing batch: err = %v", err)
	}
}
