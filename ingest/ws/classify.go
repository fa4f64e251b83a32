package ws

import (
	"errors"
	"strings"
	"sync"
	"unsafe"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// maxPendingSubscribes bounds the eth_subscribe requests a connection
// remembers while waiting for their responses.
const maxPendingSubscribes = 1024

// maxBatch is the most elements of a batch the edge meters; a larger one
// closes the connection with 1009 (nodes refuse far smaller ones: geth's
// default limit is 1000). It bounds what classifying a batch costs: an
// event names each element's method.
const maxBatch = 10000

// errBatchTooLarge reports a batch of more than maxBatch elements.
var errBatchTooLarge = errors.New("ws: batch too large")

// pendingSubscribes remembers which request ids of a connection were
// eth_subscribe, so that their responses' results are known to be
// subscription ids in the events. It is shared by a connection's two
// directions. Ids are kept cleaned, so at most maxPendingSubscribes ×
// event.MaxIDLen bytes. It serves classification only, with one upstream
// or several; the bookkeeping that keeps subscriptions across a move is
// package subscriptions'.
type pendingSubscribes struct {
	mu      sync.Mutex
	pending map[string]struct{}
	// open are the subscriptions answered and not unsubscribed (an
	// eth_unsubscribe request ends one, whatever its answer), for the
	// subscriptions limit of a connection without a pool: at most
	// maxPendingSubscribes.
	open map[string]struct{}
}

func (s *pendingSubscribes) subscribe(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[string]struct{}{}
	}
	if len(s.pending) < maxPendingSubscribes {
		s.pending[strings.Clone(id)] = struct{}{}
	}
}

// answered reports whether id was a pending eth_subscribe, forgetting it.
func (s *pendingSubscribes) answered(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; ok {
		delete(s.pending, id)
		return true
	}
	return false
}

// opened notes subscription id, answered.
func (s *pendingSubscribes) opened(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		s.open = map[string]struct{}{}
	}
	if len(s.open) < maxPendingSubscribes {
		s.open[strings.Clone(id)] = struct{}{}
	}
}

// closed forgets subscription id.
func (s *pendingSubscribes) closed(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, id)
}

// count is the subscriptions open and being opened.
func (s *pendingSubscribes) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) + len(s.open)
}

// classifier classifies one direction's messages from their JSON-RPC
// envelope, reusing its scanner and scratch space.
type classifier struct {
	s, sub  scanner // the message; params within it
	env     rawEnv
	methods []string
	one     event.Message // a batch element's classification, discarded
}

// classify fills m's role, method, batch fields, rpc_id and subscription_id
// from payload, decoding only the JSON-RPC envelope, as encoding/json
// would (classify_oracle_test.go). A payload that is not a JSON-RPC object
// or non-empty array is OTHER; subs may be nil. Every string set in m has
// been through event.CleanText: methods cut to event.MaxMethodLen, ids to
// event.MaxIDLen. The strings may share payload's memory: m must be used
// (recorded) before payload changes. A batch of more than maxBatch elements
// is errBatchTooLarge.
func (c *classifier) classify(m *event.Message, payload []byte, subs *pendingSubscribes) error {
	m.Role = event.Role_OTHER
	p := payload
	for len(p) > 0 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\r' || p[0] == '\n') {
		p = p[1:]
	}
	if len(p) == 0 {
		return nil
	}
	c.s.reset(p)
	switch p[0] {
	case '{':
		if c.s.envelope(&c.env) && c.s.end() {
			c.classifyOne(m, &c.env, subs)
		}
	case '[':
		n, ok := c.countBatch()
		if !ok || n == 0 {
			return nil
		}
		if n > maxBatch {
			return errBatchTooLarge
		}
		c.s.reset(p)
		c.classifyBatch(m, n, subs)
	}
	return nil
}

// countBatch validates the batch at the scanner's start and counts its
// elements, each an object or null, as encoding/json decodes a
// []envelope.
func (c *classifier) countBatch() (int, bool) {
	s := &c.s
	if !s.open(false) {
		return 0, false
	}
	if s.ws(); s.peek() == ']' {
		s.i++
		return 0, s.end()
	}
	for n := 1; ; n++ {
		if !c.element() {
			return 0, false
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return n, s.end()
		default:
			return 0, false
		}
	}
}

// element reads the batch element at the scanner into c.env: an object,
// or null (an empty envelope).
func (c *classifier) element() bool {
	c.s.ws()
	if c.s.peek() == 'n' {
		c.env = rawEnv{}
		return c.s.literal("null")
	}
	return c.s.peek() == '{' && c.s.envelope(&c.env)
}

// classifyBatch classifies the valid batch of n elements at the scanner:
// a request if any element has a method, else a response, with each
// element's method; every element is classified too, so subscriptions
// opened or answered within a batch are remembered.
func (c *classifier) classifyBatch(m *event.Message, n int, subs *pendingSubscribes) {
	s := &c.s
	s.open(false)
	c.methods = c.methods[:0]
	m.Role = event.Role_RESPONSE
	for range n {
		s.ws()
		c.element()
		method := c.env.methodText()
		if method != "" {
			m.Role = event.Role_REQUEST
		}
		c.methods = append(c.methods, cleanMethod(method))
		c.one.Reset()
		c.classifyOne(&c.one, &c.env, subs)
		s.ws()
		s.i++ // the comma or the closing bracket
	}
	m.BatchSize = uint32(n)
	m.BatchMethods = c.methods
	if cap(c.methods) > 1024 {
		c.methods = nil // do not keep a huge batch's scratch space
	}
}

// classifyOne classifies one JSON-RPC object.
func (c *classifier) classifyOne(m *event.Message, e *rawEnv, subs *pendingSubscribes) {
	if e.hasID() {
		m.RpcId = cleanID(wireString(e.id))
	}
	method := e.methodText()
	switch {
	case method != "":
		m.Method = cleanMethod(method)
		m.Role = event.Role_NOTIFICATION
		if e.hasID() {
			m.Role = event.Role_REQUEST
		}
		switch method {
		case "eth_subscribe":
			if subs != nil && m.Role == event.Role_REQUEST {
				subs.subscribe(m.RpcId)
			}
		case "eth_unsubscribe":
			m.SubscriptionId = c.unsubscribeID(e.params)
			if subs != nil && m.Role == event.Role_REQUEST && m.SubscriptionId != "" {
				subs.closed(m.SubscriptionId)
			}
		case "eth_subscription":
			m.SubscriptionId = c.notificationID(e.params)
		}
	case e.isError():
		m.Role = event.Role_ERROR
		if subs != nil && m.RpcId != "" {
			subs.answered(m.RpcId)
		}
	case len(e.result) > 0 || e.hasID():
		m.Role = event.Role_RESPONSE
		if subs != nil && m.RpcId != "" && subs.answered(m.RpcId) {
			if m.SubscriptionId = idText(e.result); m.SubscriptionId != "" {
				subs.opened(m.SubscriptionId)
			}
		}
	}
}

// methodText is e's method decoded, "" if it has none.
func (e *rawEnv) methodText() string {
	if e.method == nil {
		return ""
	}
	return wireString(unquote(e.method))
}

// unsubscribeID is params[0] of eth_unsubscribe as text. params is valid
// JSON: an array's first element counts; null, an empty array or anything
// else gives none (encoding/json fails to decode it into a slice).
func (c *classifier) unsubscribeID(params []byte) string {
	if len(params) == 0 || params[0] != '[' {
		return ""
	}
	s := &c.sub
	s.reset(params)
	s.open(false)
	if s.ws(); s.peek() == ']' {
		return ""
	}
	v, _ := s.value()
	return idText(v)
}

// notificationID is params.subscription of eth_subscription as text: the
// last key matching "subscription" as encoding/json matches it. params is
// valid JSON; anything but an object gives none.
func (c *classifier) notificationID(params []byte) string {
	if len(params) == 0 || params[0] != '{' {
		return ""
	}
	s := &c.sub
	s.reset(params)
	s.open(true)
	var sub []byte
	if s.ws(); s.peek() == '}' {
		return ""
	}
	for {
		tok, escaped, _ := s.key()
		v, _ := s.value()
		if isSubscriptionKey(tok, escaped) {
			sub = v
		}
		if s.ws(); s.peek() != ',' {
			return idText(sub)
		}
		s.i++
	}
}

func isSubscriptionKey(tok []byte, escaped bool) bool {
	name := tok[1 : len(tok)-1]
	if string(name) == "subscription" {
		return true
	}
	if escaped {
		name = unquote(tok)
	}
	return strings.EqualFold(wireString(name), "subscription")
}

// idText is an id as text: a JSON string decoded, anything else as its
// JSON text; null or absent is empty. It is cleaned for an event.
func idText(raw []byte) string {
	if len(raw) == 0 || isNull(raw) {
		return ""
	}
	if raw[0] == '"' {
		return cleanID(wireString(unquote(raw)))
	}
	return cleanID(wireString(raw))
}

// wireString is b as a string, without copying. Fields of the reused
// event.Message are set from the payload this way: the recorder encodes
// (copies) the message before the payload's buffer is reused, and nothing
// else keeps them (subscriptions clones what it stores).
func wireString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// cleanMethod and cleanID make a string from the wire fit an event: valid
// UTF-8 without NUL, cut to the limit (event.CleanText).
func cleanMethod(s string) string { s, _ = event.CleanText(s, event.MaxMethodLen); return s }
func cleanID(s string) string     { s, _ = event.CleanText(s, event.MaxIDLen); return s }

// classify classifies with a classifier of its own, for tests.
func classify(m *event.Message, payload []byte, subs *pendingSubscribes) error {
	var c classifier
	return c.classify(m, payload, subs)
}
