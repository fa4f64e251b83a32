package main

import (
	"strings"
	"testing"
)

func TestCheckPolicies(t *testing.T) {
	ok := []serviceConfig{
		{ID: "a", Protocol: "WEBSOCKET_JSONRPC"},
		{ID: "b", Protocol: "WEBSOCKET_JSONRPC", Policy: "method", Params: map[string]any{"default": 0, "methods": map[string]any{"eth_call": 5}}},
		{ID: "c", Protocol: "WEBSOCKET_JSONRPC", Policy: "expr", PolicyVersion: 1, Params: map[string]any{"expression": "wire_size / 100"}},
	}
	if err := checkPolicies(ok); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		svc  serviceConfig
		want string
	}{
		{serviceConfig{ID: "x", Policy: "nope"}, "service x: policy: unknown policy"},
		{serviceConfig{ID: "x", Policy: "bytes", PolicyVersion: 9}, "unsupported policy version"},
		{serviceConfig{ID: "x", Policy: "bytes", Params: map[string]any{"block": 0}}, "block 0"},
		{serviceConfig{ID: "x", Policy: "expr", Params: map[string]any{"expression": "wire_size +\n nope"}}, "2:2"},
	} {
		err := checkPolicies(append(ok[:1:1], tc.svc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want it to say %q", tc.svc, err, tc.want)
		}
	}
}
