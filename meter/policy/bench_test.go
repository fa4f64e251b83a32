package policy_test

import (
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/meter/policy"
	"github.com/relaymeter/relaymeter/stratum/sv2"
)

// BenchmarkUnits measures one Units call per message of a representative
// stream for each built-in policy: ns/op is ns per message.
func BenchmarkUnits(b *testing.B) {
	rpc := `{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x00000000000000000000000000000000deadbeef","data":"0x70a08231"},"latest"]}`
	lines := strings.Repeat(`{"id":"7","method":"job"}`+"\n", 3)
	okPayload, err := (&sv2.SubmitSharesSuccess{ChannelID: 1, NewSubmitsAcceptedCount: 3, NewSharesSum: 99}).Encode(nil)
	if err != nil {
		b.Fatal(err)
	}
	sol := solution("7")
	res := result("7", "1")
	for _, tc := range []struct {
		name, policy, params string
		msgs                 []*event.Message
	}{
		{"message", "message", ``, []*event.Message{payload(up, rpc)}},
		{"bytes", "bytes", `{"block": 100}`, []*event.Message{payload(up, rpc), payload(down, rpc)}},
		{"method", "method", `{"default": 1, "methods": {"eth_getLogs": 50, "eth_call": 5}}`, []*event.Message{
			{Direction: up, Method: "eth_call"}, {Direction: down}}},
		{"method-batch10", "method", `{"methods": {"eth_getLogs": 50, "eth_call": 5}}`, []*event.Message{
			{Direction: up, BatchSize: 10, BatchMethods: strings.Split("eth_call,eth_getLogs,a,b,c,d,e,f,g,h", ",")}}},
		{"delimiter-lf", "delimiter", `{}`, []*event.Message{payload(up, lines[:40]), payload(up, lines[40:])}},
		{"delimiter-crlf-split", "delimiter", `{"delimiter": "\r\n"}`, []*event.Message{payload(up, "abc\r"), payload(up, "\ndef\r\nghi")}},
		{"expr-method", "expr", exprParams(`method == "eth_getLogs" ? 50 : direction == "CLIENT_TO_UPSTREAM" ? 1 : 0`), []*event.Message{
			{Direction: up, Method: "eth_call"}, {Direction: down}}},
		{"expr-size", "expr", exprParams(`wire_size / 1024 + 1`), []*event.Message{{Direction: up, WireSize: 4000}}},
		{"sv2-shares", "sv2-shares", `{"by": "sum"}`, []*event.Message{
			{Direction: down, Method: "SubmitShares.Success", Payload: okPayload, PayloadSize: uint64(len(okPayload))}, {Direction: up, Method: "SubmitSharesStandard"}}},
		{"beam-solutions", "beam-solutions", ``, []*event.Message{sol, res, {Direction: down, Method: "job"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := mustNew(b, tc.policy, tc.params)
			s := &policy.Stream{Protocol: "WEBSOCKET_JSONRPC", Service: "svc", Application: "app"}
			state := make([]byte, 0, 64)
			b.ReportAllocs()
			var total uint64
			i := 0
			for b.Loop() {
				u, next, err := p.Units(s, state, tc.msgs[i%len(tc.msgs)])
				if err != nil {
					b.Fatal(err)
				}
				total += u
				state = append(state[:0], next...)
				i++
			}
			if total == 0 && tc.policy != "beam-solutions" {
				b.Fatal("no units")
			}
		})
	}
}
