package ws

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// envelope is a JSON-RPC message with only its routing fields decoded.
type envelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func (e *envelope) hasID() bool     { return len(e.ID) > 0 && !isNull(e.ID) }
func (e *envelope) isError() bool   { return len(e.Error) > 0 && !isNull(e.Error) }
func (e *envelope) isRequest() bool { return e.Method != "" && e.hasID() }

func isNull(raw json.RawMessage) bool { return bytes.Equal(raw, []byte("null")) }

// maxPendingSubscribes bounds the eth_subscribe requests a connection
// remembers while waiting for their responses.
const maxPendingSubscribes = 1024

// subscriptions remembers which request ids of a connection were
// eth_subscribe, so that their responses' results are known to be
// subscription ids. It is shared by a connection's two directions. Ids are
// kept cleaned, so at most maxPendingSubscribes × event.MaxIDLen bytes.
type subscriptions struct {
	mu      sync.Mutex
	pending map[string]struct{}
}

func (s *subscriptions) subscribe(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[string]struct{}{}
	}
	if len(s.pending) < maxPendingSubscribes {
		s.pending[id] = struct{}{}
	}
}

// answered reports whether id was a pending eth_subscribe, forgetting it.
func (s *subscriptions) answered(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; ok {
		delete(s.pending, id)
		return true
	}
	return false
}

// classify fills m's role, method, batch fields, rpc_id and subscription_id
// from payload, decoding only the JSON-RPC envelope. A payload that is not a
// JSON-RPC object or non-empty array is OTHER. subs may be nil. Every string
// set in m has been through event.CleanText: methods cut to
// event.MaxMethodLen, ids to event.MaxIDLen.
func classify(m *event.Message, payload []byte, subs *subscriptions) {
	m.Role = event.Role_OTHER
	p := bytes.TrimLeft(payload, " \t\r\n")
	if len(p) == 0 {
		return
	}
	switch p[0] {
	case '{':
		var e envelope
		if json.Unmarshal(p, &e) != nil {
			return
		}
		classifyOne(m, &e, subs)
	case '[':
		var es []envelope
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
			classifyOne(&one, &es[i], subs) // remembers eth_subscribe ids
		}
	}
}

func classifyOne(m *event.Message, e *envelope, subs *subscriptions) {
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
				m.SubscriptionId = idText(params[0])
			}
		case "eth_subscription":
			var params struct {
				Subscription json.RawMessage `json:"subscription"`
			}
			if json.Unmarshal(e.Params, &params) == nil {
				m.SubscriptionId = idText(params.Subscription)
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
			m.SubscriptionId = idText(e.Result)
		}
	}
}

// idText is a subscription id as text: a JSON string unquoted, anything
// else (a number) as its JSON text; null or invalid is empty. It is
// cleaned for an event.
func idText(raw json.RawMessage) string {
	if len(raw) == 0 || isNull(raw) {
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

// cleanMethod and cleanID make a string from the wire fit an event: valid
// UTF-8 without NUL, cut to the limit (event.CleanText).
func cleanMethod(s string) string { s, _ = event.CleanText(s, event.MaxMethodLen); return s }
func cleanID(s string) string     { s, _ = event.CleanText(s, event.MaxIDLen); return s }
