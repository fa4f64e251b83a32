package ws

import (
	"slices"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
)

func TestClassify(t *testing.T) {
	type want struct {
		role    event.Role
		method  string
		id      string
		sub     string
		batch   uint32
		methods []string
	}
	for _, tc := range []struct {
		name string
		// subscribe, when set, is an eth_subscribe request seen before.
		subscribe string
		payload   string
		want      want
	}{
		{name: "request", payload: `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`,
			want: want{role: event.Role_REQUEST, method: "eth_blockNumber", id: "1"}},
		{name: "string id", payload: ` {"jsonrpc":"2.0","id":"a-1","method":"eth_chainId"}`,
			want: want{role: event.Role_REQUEST, method: "eth_chainId", id: `"a-1"`}},
		{name: "notification", payload: `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xab","result":{"number":"0x1"}}}`,
			want: want{role: event.Role_NOTIFICATION, method: "eth_subscription", sub: "0xab"}},
		{name: "notification without id", payload: `{"jsonrpc":"2.0","method":"net_ping"}`,
			want: want{role: event.Role_NOTIFICATION, method: "net_ping"}},
		{name: "response", payload: `{"jsonrpc":"2.0","id":7,"result":"0x10"}`,
			want: want{role: event.Role_RESPONSE, id: "7"}},
		{name: "null result", payload: `{"jsonrpc":"2.0","id":7,"result":null}`,
			want: want{role: event.Role_RESPONSE, id: "7"}},
		{name: "error", payload: `{"jsonrpc":"2.0","id":8,"error":{"code":-32601,"message":"no such method"}}`,
			want: want{role: event.Role_ERROR, id: "8"}},
		{name: "error null id", payload: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`,
			want: want{role: event.Role_ERROR}},
		{name: "batch request", payload: `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}]`,
			want: want{role: event.Role_REQUEST, batch: 2, methods: []string{"eth_chainId", "eth_blockNumber"}}},
		{name: "batch response", payload: `[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"error":{"code":1}}]`,
			want: want{role: event.Role_RESPONSE, batch: 2, methods: []string{"", ""}}},
		{name: "empty batch", payload: `[]`, want: want{role: event.Role_OTHER}},
		{name: "not json", payload: `hello`, want: want{role: event.Role_OTHER}},
		{name: "broken json", payload: `{"id":1,"method":`, want: want{role: event.Role_OTHER}},
		{name: "json scalar", payload: `42`, want: want{role: event.Role_OTHER}},
		{name: "binary bytes", payload: "\x00\x01\xff", want: want{role: event.Role_OTHER}},
		{name: "empty", payload: ``, want: want{role: event.Role_OTHER}},
		{name: "method not a string", payload: `{"id":1,"method":5}`, want: want{role: event.Role_OTHER}},
		{name: "subscribe response", subscribe: `{"jsonrpc":"2.0","id":3,"method":"eth_subscribe","params":["newHeads"]}`,
			payload: `{"jsonrpc":"2.0","id":3,"result":"0xcd"}`,
			want:    want{role: event.Role_RESPONSE, id: "3", sub: "0xcd"}},
		{name: "subscribe response other id", subscribe: `{"jsonrpc":"2.0","id":3,"method":"eth_subscribe","params":["newHeads"]}`,
			payload: `{"jsonrpc":"2.0","id":4,"result":"0xcd"}`,
			want:    want{role: event.Role_RESPONSE, id: "4"}},
		{name: "subscribe in batch", subscribe: `[{"jsonrpc":"2.0","id":"s","method":"eth_subscribe","params":["logs",{}]}]`,
			payload: `{"jsonrpc":"2.0","id":"s","result":"0xef"}`,
			want:    want{role: event.Role_RESPONSE, id: `"s"`, sub: "0xef"}},
		{name: "unsubscribe", payload: `{"jsonrpc":"2.0","id":9,"method":"eth_unsubscribe","params":["0xcd"]}`,
			want: want{role: event.Role_REQUEST, method: "eth_unsubscribe", id: "9", sub: "0xcd"}},
		{name: "unsubscribe bad params", payload: `{"jsonrpc":"2.0","id":9,"method":"eth_unsubscribe","params":{"x":1}}`,
			want: want{role: event.Role_REQUEST, method: "eth_unsubscribe", id: "9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var subs pendingSubscribes
			if tc.subscribe != "" {
				var m event.Message
				classify(&m, []byte(tc.subscribe), &subs)
				if m.Role != event.Role_REQUEST {
					t.Fatalf("subscribe classified %v", m.Role)
				}
			}
			var m event.Message
			classify(&m, []byte(tc.payload), &subs)
			got := want{role: m.Role, method: m.Method, id: m.RpcId, sub: m.SubscriptionId, batch: m.BatchSize, methods: m.BatchMethods}
			if got.role != tc.want.role || got.method != tc.want.method || got.id != tc.want.id || got.sub != tc.want.sub ||
				got.batch != tc.want.batch || !slices.Equal(got.methods, tc.want.methods) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			if tc.subscribe != "" && tc.want.sub != "" && subs.answered(tc.want.id) {
				t.Fatal("answered subscribe still pending")
			}
		})
	}
}

// TestSubscriptionsBounded: a client that never gets answers cannot grow
// the pending set without limit.
func TestSubscriptionsBounded(t *testing.T) {
	var subs pendingSubscribes
	for i := range 2 * maxPendingSubscribes {
		subs.subscribe(string(rune('a'+i%26)) + string(rune(i)))
	}
	if n := len(subs.pending); n != maxPendingSubscribes {
		t.Fatalf("%d pending, want %d", n, maxPendingSubscribes)
	}
}

func FuzzClassify(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe"}`))
	f.Add([]byte(`[{"id":1,"result":"0x1"}]`))
	f.Add([]byte(`{"method":"eth_subscription","params":{"subscription":1}}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		var subs pendingSubscribes
		var m event.Message
		classify(&m, p, &subs)
		if m.Role == event.Role_ROLE_UNSPECIFIED {
			t.Fatal("no role")
		}
		if int(m.BatchSize) != len(m.BatchMethods) {
			t.Fatal("batch size and methods disagree")
		}
	})
}

// classifyCases are typical messages, for BenchmarkClassify.
var classifyCases = []struct{ name, payload string }{
	{"request", `{"jsonrpc":"2.0","id":1234567,"method":"eth_blockNumber","params":[]}`},
	{"call", `{"jsonrpc":"2.0","id":42,"method":"eth_call","params":[{"to":"0x6b175474e89094c44da98b954eedeac495271d0f","data":"0x70a08231000000000000000000000000ab5801a7d398351b8be11c439e05c5b3259aec9b"},"latest"]}`},
	{"response", `{"jsonrpc":"2.0","id":1234567,"result":"0x1234abc"}`},
	{"notification", `{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x00000000000000000000000000000001","result":{"number":"0x1000001","hash":"0x0000000000000000000000000000000000000000000000000000000001000001","parentHash":"0x0000000000000000000000000000000000000000000000000000000001000000","timestamp":"0x6740a1b2","gasLimit":"0x1c9c380","gasUsed":"0x0","miner":"0x0000000000000000000000000000000000000000"}}}`},
	{"batch10", "[" + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0xab5801a7d398351b8be11c439e05c5b3259aec9b","latest"]},`, 9) + `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0xab5801a7d398351b8be11c439e05c5b3259aec9b","latest"]}]`},
}

func BenchmarkClassify(b *testing.B) {
	for _, c := range classifyCases {
		b.Run(c.name, func(b *testing.B) {
			p := []byte(c.payload)
			var subs pendingSubscribes
			var m event.Message
			var cls classifier // one per direction, as the edge keeps it
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				m.Reset()
				cls.classify(&m, p, &subs)
			}
		})
	}
}
