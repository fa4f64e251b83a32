package ws

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// oracleEnvelope is a JSON-RPC message with only its routing fields decoded.
type oracleEnvelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func (e *oracleEnvelope) hasID() bool   { return len(e.ID) > 0 && !oracleIsNull(e.ID) }
func (e *oracleEnvelope) isError() bool { return len(e.Error) > 0 && !oracleIsNull(e.Error) }

func oracleIsNull(raw json.RawMessage) bool { return bytes.Equal(raw, []byte("null")) }

// oracleClassify is the encoding/json classifier the scanner replaced, as
// it was, kept as the oracle the scanner must match: it fills m's role,
// method, batch fields, rpc_id and subscription_id from payload, decoding
// only the JSON-RPC envelope; a payload that is not a JSON-RPC object or
// non-empty array is OTHER; every string is cleaned as the edge's are.
func oracleClassify(m *event.Message, payload []byte, subs *pendingSubscribes) {
	m.Role = event.Role_OTHER
	p := bytes.TrimLeft(payload, " \t\r\n")
	if len(p) == 0 {
		return
	}
	switch p[0] {
	case '{':
		var e oracleEnvelope
		if json.Unmarshal(p, &e) != nil {
			return
		}
		oracleClassifyOne(m, &e, subs)
	case '[':
		var es []oracleEnvelope
		if json.Unmarshal(p, &es) != nil || len(es) == 0 {
			return
		}
		m.BatchSize = uint32(len(es))
		m.BatchMethods = make([]string, len(es))
		m.Role = event.Role_RESPONSE
		for i := range es {
			m.BatchMethods[i] = cleanMethod(es[i].Method)
			if es[i].Method != "" {
				m.Role = event.Role_REQUEST
			}
			var one event.Message
			oracleClassifyOne(&one, &es[i], subs) // remembers eth_subscribe ids
		}
	}
}

func oracleClassifyOne(m *event.Message, e *oracleEnvelope, subs *pendingSubscribes) {
	if e.hasID() {
		m.RpcId = cleanID(string(e.ID))
	}
	switch {
	case e.Method != "":
		m.Method = cleanMethod(e.Method)
		m.Role = event.Role_NOTIFICATION
		if e.hasID() {
			m.Role = event.Role_REQUEST
		}
		switch e.Method {
		case "eth_subscribe":
			if subs != nil && m.Role == event.Role_REQUEST {
				subs.subscribe(m.RpcId)
			}
		case "eth_unsubscribe":
			var params []json.RawMessage
			if json.Unmarshal(e.Params, &params) == nil && len(params) > 0 {
				m.SubscriptionId = oracleIDText(params[0])
			}
		case "eth_subscription":
			var params struct {
				Subscription json.RawMessage `json:"subscription"`
			}
			if json.Unmarshal(e.Params, &params) == nil {
				m.SubscriptionId = oracleIDText(params.Subscription)
			}
		}
	case e.isError():
		m.Role = event.Role_ERROR
		if subs != nil && m.RpcId != "" {
			subs.answered(m.RpcId)
		}
	case len(e.Result) > 0 || e.hasID():
		m.Role = event.Role_RESPONSE
		if subs != nil && m.RpcId != "" && subs.answered(m.RpcId) {
			m.SubscriptionId = oracleIDText(e.Result)
		}
	}
}

// oracleIDText is a subscription id as text: a JSON string unquoted, anything
// else (a number) as its JSON text; null or invalid is empty. It is
// cleaned for an event.
func oracleIDText(raw json.RawMessage) string {
	if len(raw) == 0 || oracleIsNull(raw) {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return cleanID(s)
		}
		return ""
	}
	return cleanID(string(raw))
}

// oracleCases are inputs where a scanner is most likely to part ways with
// encoding/json: key folding, duplicate keys, escapes, invalid UTF-8,
// numbers, literals, trailing bytes, nesting, odd batch elements and
// params. They seed the fuzz target too (testdata/fuzz has more).
var oracleCases = []string{
	`{"METHOD":"eth_call","ID":1}`, `{"Method":"a","method":"b","id":1}`, `{"method":"a","method":null,"id":1}`,
	`{"method":null,"id":1}`, `{"method":5,"id":1}`, `{"method":"a","method":5}`, `{"method":true}`, `{"method":{}}`,
	`{"\u006d\u0065thod":"x","id":1}`, `{"meth\u006fd":"x"}`, "{\"param\u017f\":[\"x\"],\"method\":\"eth_unsubscribe\",\"id\":1}",
	"{\"\u0131d\":1,\"result\":2}", `{"ID":null,"id":2,"result":1}`, `{"id":1,"id":null,"result":1}`, `{"id":1,"Id":"x","result":1}`,
	`{"method":"eth_\u0000","id":1}`, `{"method":"\ud800","id":1}`, `{"method":"\ud83d\ude00"}`, `{"method":"\udc00\ud800x"}`,
	`{"method":"\ud800\u0041"}`, `{"method":"a\"b\\c\/d\b\f\n\r\t"}`, "{\"method\":\"eth_\xff\xfe\",\"id\":\"\xc3\"}",
	"{\"m\xe9thod\":\"x\"}", "{\"method\":\"\xed\xa0\x80\"}", `{"id":-0,"result":1}`, `{"id":01}`, `{"id":1.}`, `{"id":1e}`,
	`{"id":1e+5,"result":0}`, `{"id":123456789012345678901234567890,"result":[]}`, `{"id":-}`, `{"id":-1.5E-3,"result":1}`,
	`{"id":tru}`, `{"id":nulll}`, `{"id":1,"result":1} x`, "{\"id\":1,\"result\":1}  \n\t\r", `{"id":1}{}`,
	"  \n{\"id\":1,\"result\":2}", "{\"method\":\"a\x01b\"}", "{\"method\":\"a\x7fb\"}", `{"method":"a\u00"}`, `{"method":"a\x"}`,
	`[null]`, `[null,{"method":"x","id":1}]`, `[1]`, `[{}]`, `[[]]`, `[{"method":5}]`, `[ ]`, `[{},]`, `[{}`, `[{}]]`,
	`[{"id":1,"method":"eth_subscribe","params":["newHeads"]},{"id":1,"result":"0xab"}]`,
	`{"method":"eth_subscription","params":{"subscription":"0x1","SUBSCRIPTION":"0x2"}}`,
	"{\"method\":\"eth_subscription\",\"params\":{\"\u017fubscription\":\"x\"}}",
	`{"method":"eth_subscription","params":{"subscr\u0069ption":7}}`, `{"method":"eth_subscription","params":[1]}`,
	`{"method":"eth_subscription","params":null}`, `{"method":"eth_subscription"}`, `{"method":"eth_subscription","params":{}}`,
	`{"method":"eth_subscription","params":{"subscription":{"a": [1, 2]}}}`, `{"method":"eth_subscription","params":{"subscription":"\u0041"}}`,
	`{"method":"eth_subscription","params":{"subscription":null}}`, `{"method":"eth_subscription","params":{"subscription":"a","subscription":null}}`,
	`{"id":1,"method":"eth_unsubscribe","params":[]}`, `{"id":1,"method":"eth_unsubscribe","params":null}`,
	`{"id":1,"method":"eth_unsubscribe","params":{"0":"x"}}`, `{"id":1,"method":"eth_unsubscribe","params":[null]}`,
	`{"id":1,"method":"eth_unsubscribe","params":[12, "x"]}`, `{"id":1,"method":"eth_unsubscribe","params":["a\u0000"]}`,
	`{"id":1,"method":"eth_unsubscribe","params":"x"}`, `{"id":1,"error":null,"result":1}`, `{"id":1,"error":{}}`, `{"error":1}`,
	`{"id":null,"result":null}`, `{"result":null}`, `{}`, `{"jsonrpc":"2.0"}`, ``, `{`, `[`, `{"a"}`, `{"a":}`, `{,}`,
	`{"a":1,}`, `[1,]`, `{"a" 1}`, `{"a":1 "b":2}`, `{"a":[1,{"b":[]},"c"],"id":1,"result":{"x":{"y":{}}}}`, `{"a":[}`, `{"a":{]}`,
	`{"id":1,"method":"eth_subscribe","params":["newHeads"]}`, `{"id":1,"result":"0xsub"}`, `{"id":1,"error":{"code":1}}`,
	`"just a string"`, `42`, `null`, "\xef\xbb\xbf{\"id\":1,\"result\":1}",
}

// TestScannerMatchesOracle: every case, and each pair of consecutive ones
// (so that a subscribe meets its response), classifies as encoding/json
// did.
func TestScannerMatchesOracle(t *testing.T) {
	for i, c := range oracleCases {
		compareWithOracle(t, []byte(c), []byte(oracleCases[(i+1)%len(oracleCases)]))
	}
	for _, depth := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		deep := `{"id":1,"result":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
		compareWithOracle(t, []byte(deep), nil)
	}
}

// FuzzScannerMatchesOracle: any two messages in a row classify exactly as
// encoding/json classified them: role, method, ids, batch fields,
// subscription ids, and the subscriptions left pending. The one difference
// is deliberate: a batch of more than maxBatch elements is refused
// (errBatchTooLarge) where the oracle would list them all.
func FuzzScannerMatchesOracle(f *testing.F) {
	for i, c := range oracleCases {
		f.Add([]byte(c), []byte(oracleCases[(i+7)%len(oracleCases)]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) { compareWithOracle(t, a, b) })
}

func compareWithOracle(t *testing.T, msgs ...[]byte) {
	t.Helper()
	var got, want pendingSubscribes
	for _, p := range msgs {
		var g, w event.Message
		err := classify(&g, p, &got)
		oracleClassify(&w, p, &want)
		if errors.Is(err, errBatchTooLarge) {
			if w.BatchSize <= maxBatch {
				t.Fatalf("%q: refused as too large a batch; the oracle saw %d elements", p, w.BatchSize)
			}
			return // the oracle went on; their subscriptions differ from here
		}
		if err != nil || g.Role != w.Role || g.Method != w.Method || g.RpcId != w.RpcId || g.SubscriptionId != w.SubscriptionId ||
			g.BatchSize != w.BatchSize || !slices.Equal(g.BatchMethods, w.BatchMethods) {
			t.Fatalf("%q:\nscanner %v (err %v)\noracle  %v", p, &g, err, &w)
		}
	}
	if !maps.Equal(got.pending, want.pending) {
		t.Fatalf("pending subscriptions: scanner %v, oracle %v", got.pending, want.pending)
	}
}

// TestBatchLimit: a batch of maxBatch elements is classified, one more is
// errBatchTooLarge.
func TestBatchLimit(t *testing.T) {
	batch := func(n int) []byte {
		return []byte("[" + strings.TrimSuffix(strings.Repeat(`{"id":1,"method":"m"},`, n), ",") + "]")
	}
	var m event.Message
	if err := classify(&m, batch(maxBatch), nil); err != nil || m.BatchSize != maxBatch || len(m.BatchMethods) != maxBatch {
		t.Fatalf("batch of %d: %v, size %d", maxBatch, err, m.BatchSize)
	}
	if err := classify(&m, batch(maxBatch+1), nil); !errors.Is(err, errBatchTooLarge) {
		t.Fatalf("batch of %d: %v, want errBatchTooLarge", maxBatch+1, err)
	}
}
