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
// subscription ids. It is shared by a connection's two directions.
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
// JSON-RPC object or non-empty array is OTHER. subs may be nil.
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
			m.BatchMethods[i] = es[i].Method
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
		m.RpcId = string(e.ID)
	}
	switch {
	case e.Method != "":
		m.Method = e.Method
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
// else (a number) as its JSON text; null or invalid is empty.
func idText(raw json.RawMessage) string {
	if len(raw) == 0 || isNull(raw) {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return ""
	}
	return string(raw)
}
