package graphql

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	gql "github.com/graph-gophers/graphql-go"
	gqlerrors "github.com/graph-gophers/graphql-go/errors"

	"github.com/relaymeter/relaymeter/identity"
)

// liveSDL declares the subscriptions, served with the schema.
//
//go:embed live.graphqls
var liveSDL string

// LiveProtocol is the WebSocket subprotocol of live operations at
// /graphql: graphql-transport-ws, as graphql-ws and GraphiQL speak it.
const LiveProtocol = "graphql-transport-ws"

// Defaults of LiveConfig.
const (
	DefaultLivePollInterval   = 500 * time.Millisecond
	DefaultLiveInitTimeout    = 5 * time.Second
	DefaultLiveKeyRecheck     = time.Second
	DefaultLiveMaxSubs        = 10
	DefaultLiveMaxConnsPerKey = 8
	DefaultLiveMaxConns       = 1000
	DefaultLiveMaxMessage     = 64 << 10
	DefaultLiveMaxPolls       = 4
	DefaultLiveWriteTimeout   = 10 * time.Second
	DefaultLivePingInterval   = 30 * time.Second
)

// CodeTooManySubscriptions is the code of the error that refuses a
// subscription beyond LiveConfig.MaxSubscriptionsPerConn.
const CodeTooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS"

// Close codes of graphql-transport-ws, and the standard ones used here.
const (
	closeBadRequest        websocket.StatusCode = 4400
	closeUnauthorized      websocket.StatusCode = 4401
	closeForbidden         websocket.StatusCode = 4403
	closeBadSubprotocol    websocket.StatusCode = 4406
	closeInitTimeout       websocket.StatusCode = 4408
	closeSubscriberExists  websocket.StatusCode = 4409
	closeTooManyInits      websocket.StatusCode = 4429
	closeInternal          websocket.StatusCode = 4500
	closeTryAgainLater     websocket.StatusCode = 1013
	maxOperationIDBytes                         = 128
	maxCloseReasonBytes                         = 120
	authenticateLiveBudget                      = 5 * time.Second
)

// LiveConfig bounds live operations; zero fields take their defaults.
type LiveConfig struct {
	// PollInterval is how often a subscription asks for its totals, and
	// so the most updates a subscriber gets: 500 ms by default.
	PollInterval time.Duration
	// InitTimeout is how long a socket may stay open without a
	// connection_init before it is closed with 4408: 5 s by default.
	InitTimeout time.Duration
	// KeyRecheck is how often a connection's key is resolved again, so
	// that a revoked key is let go within the key cache's TTL plus this:
	// 1 s by default.
	KeyRecheck time.Duration
	// MaxSubscriptionsPerConn bounds the operations active at once on a
	// connection: 10 by default.
	MaxSubscriptionsPerConn int
	// MaxConnsPerKey bounds the connections one key holds at once: 8 by
	// default.
	MaxConnsPerKey int
	// MaxConns bounds the WebSocket connections of the handler, signed in
	// or not: 1000 by default.
	MaxConns int
	// MaxMessageBytes bounds a client's message: 64 KiB by default.
	MaxMessageBytes int64
	// MaxConcurrentPolls bounds the subscriptions' queries in flight at
	// once, across connections: 4 by default.
	MaxConcurrentPolls int
	// WriteTimeout bounds one message's write to a client: 10 s by
	// default. A client that does not read is let go.
	WriteTimeout time.Duration
	// PingInterval is how often the server pings an idle client at the
	// WebSocket level to find dead peers: 30 s by default.
	PingInterval time.Duration
}

func (c LiveConfig) withDefaults() LiveConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	def(&c.PollInterval, DefaultLivePollInterval)
	def(&c.InitTimeout, DefaultLiveInitTimeout)
	def(&c.KeyRecheck, DefaultLiveKeyRecheck)
	def(&c.WriteTimeout, DefaultLiveWriteTimeout)
	def(&c.PingInterval, DefaultLivePingInterval)
	defInt(&c.MaxSubscriptionsPerConn, DefaultLiveMaxSubs)
	defInt(&c.MaxConnsPerKey, DefaultLiveMaxConnsPerKey)
	defInt(&c.MaxConns, DefaultLiveMaxConns)
	defInt(&c.MaxConcurrentPolls, DefaultLiveMaxPolls)
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultLiveMaxMessage
	}
	return c
}

// live is the handler's state of live connections.
type live struct {
	cfg  LiveConfig
	poll *pollSettings

	mu     sync.Mutex
	conns  int
	perKey map[string]int
}

func newLive(cfg LiveConfig) *live {
	cfg = cfg.withDefaults()
	return &live{
		cfg:    cfg,
		poll:   &pollSettings{every: cfg.PollInterval, slots: make(chan struct{}, cfg.MaxConcurrentPolls)},
		perKey: map[string]int{},
	}
}

func (l *live) acquireConn() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns >= l.cfg.MaxConns {
		return false
	}
	l.conns++
	return true
}

func (l *live) releaseConn() {
	l.mu.Lock()
	l.conns--
	l.mu.Unlock()
}

func (l *live) acquireKey(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perKey[id] >= l.cfg.MaxConnsPerKey {
		return false
	}
	l.perKey[id]++
	return true
}

func (l *live) releaseKey(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perKey[id]--; l.perKey[id] <= 0 {
		delete(l.perKey, id)
	}
}

// upgradeOr serves WebSocket upgrades as live connections and hands every
// other request to next.
func (h *handler) upgradeOr(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next(w, r)
			return
		}
		h.serveLive(w, r)
	}
}

// serveLive runs one graphql-transport-ws connection.
func (h *handler) serveLive(w http.ResponseWriter, r *http.Request) {
	l := h.live
	if !l.acquireConn() {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "too many live connections; retry later")
		return
	}
	defer l.releaseConn()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{LiveProtocol}})
	if err != nil {
		return // Accept answered the request
	}
	defer c.CloseNow()
	if c.Subprotocol() != LiveProtocol {
		c.Close(closeBadSubprotocol, "Subprotocol not acceptable: use "+LiveProtocol)
		return
	}
	c.SetReadLimit(l.cfg.MaxMessageBytes)
	token, _ := bearer(r)
	ctx, cancel := context.WithCancel(r.Context())
	s := &session{
		h:           h,
		reqCtx:      r.Context(),
		c:           c,
		ctx:         ctx,
		cancel:      cancel,
		headerToken: token,
		out:         make(chan []byte, 2*l.cfg.MaxSubscriptionsPerConn+4),
		ops:         map[string]*operation{},
	}
	s.run()
}

// session is one live connection.
type session struct {
	h           *handler
	c           *websocket.Conn
	reqCtx      context.Context
	ctx         context.Context
	cancel      context.CancelFunc
	headerToken string
	out         chan []byte // messages to write, in order
	wg          sync.WaitGroup

	closeOnce sync.Once

	// Owned by the reading goroutine, and read by the others only after
	// acked is set.
	inited bool
	token  string
	who    identity.Principal
	keyID  string // the key held in live.perKey, "" when none

	mu  sync.Mutex
	ops map[string]*operation
}

// operation is a subscribe in flight.
type operation struct {
	cancel context.CancelFunc
	// completed is set when the client completed it: nothing more is sent.
	completed bool
}

// message is a graphql-transport-ws message as a client sends it.
type message struct {
	Type    string          `json:"type"`
	ID      *string         `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// subscribePayload is a subscribe message's payload.
type subscribePayload struct {
	Query         *string         `json:"query"`
	OperationName *string         `json:"operationName"`
	Variables     map[string]any  `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
}

// closeWith closes the socket with code and reason, once, and ends the
// session.
func (s *session) closeWith(code websocket.StatusCode, reason string) {
	s.closeOnce.Do(func() {
		if len(reason) > maxCloseReasonBytes {
			reason = reason[:maxCloseReasonBytes]
		}
		// Close writes the close frame and waits for the client's (at
		// most 5 s), which ends the reader. Only then are the workers
		// stopped: cancelling a read closes the socket without a code.
		s.c.Close(code, reason)
		s.cancel()
	})
}

func (s *session) run() {
	defer func() {
		s.cancel()
		s.wg.Wait()
		if s.keyID != "" {
			s.h.live.releaseKey(s.keyID)
		}
	}()
	s.wg.Add(2)
	go s.writer()
	go s.keepalive()
	initTimer := time.AfterFunc(s.h.live.cfg.InitTimeout, func() {
		s.closeWith(closeInitTimeout, "Connection initialisation timeout")
	})
	defer initTimer.Stop()
	for {
		// The request's context, not s.ctx: a session ended by closeWith
		// must still read the client's close frame.
		typ, data, err := s.c.Read(s.reqCtx)
		if err != nil {
			return // closed by either side, or the read limit, or a broken frame
		}
		if typ != websocket.MessageText {
			s.closeWith(closeBadRequest, "Invalid message: binary frames are not used")
			return
		}
		if !s.handle(data, initTimer) {
			return
		}
	}
}

// handle acts on one message; false when the session is over.
func (s *session) handle(data []byte, initTimer *time.Timer) bool {
	var m message
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil || dec.More() {
		s.closeWith(closeBadRequest, "Invalid message: not a JSON object")
		return false
	}
	switch m.Type {
	case "connection_init":
		if s.inited {
			s.closeWith(closeTooManyInits, "Too many initialisation requests")
			return false
		}
		s.inited = true
		initTimer.Stop()
		return s.connectionInit(m.Payload)
	case "ping":
		if !isObjectOrNull(m.Payload) {
			s.closeWith(closeBadRequest, "Invalid message: ping payload is not an object")
			return false
		}
		return s.send(map[string]any{"type": "pong"})
	case "pong":
		return true
	case "subscribe":
		return s.subscribe(m)
	case "complete":
		if m.ID == nil || *m.ID == "" {
			s.closeWith(closeBadRequest, "Invalid message: complete without an id")
			return false
		}
		s.mu.Lock()
		if op := s.ops[*m.ID]; op != nil {
			op.completed = true
			op.cancel()
		}
		s.mu.Unlock()
		return true // an unknown id is an operation already over
	case "":
		s.closeWith(closeBadRequest, "Invalid message: no type")
	default:
		s.closeWith(closeBadRequest, fmt.Sprintf("Invalid message type %.40q", m.Type))
	}
	return false
}

// isObjectOrNull reports whether an optional payload is absent, null or an
// object.
func isObjectOrNull(p json.RawMessage) bool {
	p = bytes.TrimSpace(p)
	return len(p) == 0 || string(p) == "null" || p[0] == '{'
}

// connectionInit signs the connection in with the key of the payload's
// Authorization (or, failing that, the upgrade request's).
func (s *session) connectionInit(payload json.RawMessage) bool {
	if !isObjectOrNull(payload) {
		s.closeWith(closeBadRequest, "Invalid message: connection_init payload is not an object")
		return false
	}
	token := s.headerToken
	if len(payload) > 0 {
		var p map[string]any
		if err := json.Unmarshal(payload, &p); err != nil {
			s.closeWith(closeBadRequest, "Invalid message: connection_init payload is not an object")
			return false
		}
		for k, v := range p {
			if !strings.EqualFold(k, "Authorization") {
				continue
			}
			str, ok := v.(string)
			scheme, t, found := strings.Cut(str, " ")
			if !ok || !found || !strings.EqualFold(scheme, "Bearer") {
				s.closeWith(closeBadRequest, "Invalid message: Authorization is not \"Bearer <key>\"")
				return false
			}
			token = strings.TrimSpace(t)
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, authenticateLiveBudget)
	who, err := s.h.authenticate(ctx, token)
	cancel()
	if err != nil {
		if errors.Is(err, identity.ErrRefused) {
			s.closeWith(closeUnauthorized, "Unauthorized: missing, unknown, revoked or expired API key")
		} else {
			s.h.log.WarnContext(s.ctx, "graphql: live: key registry unavailable", "err", err)
			s.closeWith(closeTryAgainLater, "the key registry cannot be reached; retry")
		}
		return false
	}
	if !s.h.live.acquireKey(who.KeyID) {
		s.closeWith(closeForbidden, "Forbidden: too many live connections for this key")
		return false
	}
	s.mu.Lock()
	s.keyID, s.token, s.who = who.KeyID, token, who
	s.mu.Unlock()
	return s.send(map[string]any{"type": "connection_ack"})
}

// acked reports whether the connection is signed in.
func (s *session) acked() bool { return s.keyID != "" }

func (s *session) subscribe(m message) bool {
	if !s.acked() {
		s.closeWith(closeUnauthorized, "Unauthorized")
		return false
	}
	if m.ID == nil || *m.ID == "" || len(*m.ID) > maxOperationIDBytes {
		s.closeWith(closeBadRequest, "Invalid message: subscribe needs an id of 1 to 128 bytes")
		return false
	}
	var p subscribePayload
	if len(m.Payload) == 0 || json.Unmarshal(m.Payload, &p) != nil || p.Query == nil {
		s.closeWith(closeBadRequest, "Invalid message: subscribe payload needs a query")
		return false
	}
	id := *m.ID
	s.mu.Lock()
	if _, ok := s.ops[id]; ok {
		s.mu.Unlock()
		s.closeWith(closeSubscriberExists, "Subscriber for "+id+" already exists")
		return false
	}
	if len(s.ops) >= s.h.live.cfg.MaxSubscriptionsPerConn {
		s.mu.Unlock()
		return s.send(errorMessage(id, &gqlerrors.QueryError{
			Message:    fmt.Sprintf("at most %d operations at once on a connection", s.h.live.cfg.MaxSubscriptionsPerConn),
			Extensions: map[string]any{"code": CodeTooManySubscriptions},
		}))
	}
	if s.h.limit != nil {
		// A subscribe is a request like any other: it spends a token of
		// the key's rate limit.
		if _, ok := s.h.limit.take(s.who.KeyID); !ok {
			s.mu.Unlock()
			return s.send(errorMessage(id, &gqlerrors.QueryError{
				Message:    "rate limit of this key exceeded: retry later",
				Extensions: map[string]any{"code": CodeRateLimited},
			}))
		}
	}
	if len(*p.Query) > s.h.maxQuery {
		s.mu.Unlock()
		return s.send(errorMessage(id, &gqlerrors.QueryError{
			Message:    fmt.Sprintf("query length %d exceeds %d bytes", len(*p.Query), s.h.maxQuery),
			Extensions: map[string]any{"code": CodeQueryTooLong},
		}))
	}
	ctx, cancel := context.WithCancel(s.ctx)
	op := &operation{cancel: cancel}
	s.ops[id] = op
	s.mu.Unlock()

	opName := ""
	if p.OperationName != nil {
		opName = *p.OperationName
	}
	ctx = withPollSettings(withPrincipal(ctx, s.who), s.h.live.poll)
	results, err := s.h.schema.Subscribe(ctx, *p.Query, opName, p.Variables)
	if err != nil {
		cancel()
		s.h.log.ErrorContext(s.ctx, "graphql: live: subscribe", "err", err)
		s.closeWith(closeInternal, "Internal server error")
		return false
	}
	s.wg.Add(1)
	go s.forward(id, op, ctx, results)
	return true
}

// forward sends an operation's results as next messages, then complete; a
// first result that is errors alone is an error message instead.
func (s *session) forward(id string, op *operation, ctx context.Context, results <-chan any) {
	defer s.wg.Done()
	defer func() {
		op.cancel()
		for range results { // the library closes it once ctx is done
		}
		s.mu.Lock()
		delete(s.ops, id)
		s.mu.Unlock()
	}()
	first := true
	for v := range results {
		resp, ok := v.(*gql.Response)
		if !ok {
			continue
		}
		resolverExtensions(resp.Errors)
		classify(resp.Errors)
		if s.isCompleted(op) {
			return
		}
		if first && len(resp.Errors) > 0 && (len(resp.Data) == 0 || string(resp.Data) == "null") {
			s.enqueue(ctx, errorMessage(id, resp.Errors...))
			return
		}
		first = false
		b, err := json.Marshal(map[string]any{"id": id, "type": "next", "payload": resp})
		if err != nil {
			s.h.log.ErrorContext(ctx, "graphql: live: encode result", "err", err)
			s.closeWith(closeInternal, "Internal server error")
			return
		}
		if !s.enqueueBytes(ctx, b) {
			return
		}
	}
	if s.ctx.Err() == nil && !s.isCompleted(op) {
		s.enqueue(s.ctx, map[string]any{"id": id, "type": "complete"})
	}
}

func (s *session) isCompleted(op *operation) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return op.completed
}

// resolverExtensions gives errors the extensions of their resolver
// errors: graphql-go drops them when a subscription's resolver fails.
func resolverExtensions(errs []*gqlerrors.QueryError) {
	for _, e := range errs {
		var ext interface{ Extensions() map[string]any }
		if e.Extensions == nil && e.ResolverError != nil && errors.As(e.ResolverError, &ext) {
			e.Extensions = ext.Extensions()
		}
	}
}

// errorMessage returns an error message for the operation id.
func errorMessage(id string, errs ...*gqlerrors.QueryError) map[string]any {
	return map[string]any{"id": id, "type": "error", "payload": errs}
}

// send queues m from the reading goroutine; false when the session is
// over.
func (s *session) send(m map[string]any) bool { return s.enqueue(s.ctx, m) }

func (s *session) enqueue(ctx context.Context, m map[string]any) bool {
	b, err := json.Marshal(m)
	if err != nil {
		s.h.log.ErrorContext(ctx, "graphql: live: encode message", "err", err)
		s.closeWith(closeInternal, "Internal server error")
		return false
	}
	return s.enqueueBytes(ctx, b)
}

func (s *session) enqueueBytes(ctx context.Context, b []byte) bool {
	select {
	case s.out <- b:
		return true
	case <-ctx.Done():
		return false
	}
}

// writer writes the queued messages in order; a client that does not
// take one within WriteTimeout is let go.
func (s *session) writer() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case b := <-s.out:
			ctx, cancel := context.WithTimeout(s.ctx, s.h.live.cfg.WriteTimeout)
			err := s.c.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				s.cancel()
				s.c.CloseNow()
				return
			}
		}
	}
}

// keepalive resolves the key again every KeyRecheck, ending the
// connection when it no longer lets its holder in, and pings the client
// every PingInterval.
func (s *session) keepalive() {
	defer s.wg.Done()
	cfg := s.h.live.cfg
	recheck := time.NewTicker(cfg.KeyRecheck)
	defer recheck.Stop()
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	var who identity.Principal
	var token string
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-recheck.C:
			if who.KeyID == "" {
				if !s.ackedSafe() {
					continue
				}
				who, token = s.principalSafe()
			}
			ctx, cancel := context.WithTimeout(s.ctx, authenticateLiveBudget)
			p, err := s.h.authenticate(ctx, token)
			cancel()
			switch {
			case errors.Is(err, identity.ErrRefused):
				s.closeWith(closeUnauthorized, "Unauthorized: the API key was revoked or expired")
				return
			case err != nil:
				// The registry is away and the cache has no answer: keep
				// what was granted until it answers.
			case !samePrincipal(p, who):
				s.closeWith(closeForbidden, "Forbidden: the key's grants changed; reconnect")
				return
			}
		case <-ping.C:
			ctx, cancel := context.WithTimeout(s.ctx, cfg.WriteTimeout)
			err := s.c.Ping(ctx)
			cancel()
			if err != nil && s.ctx.Err() == nil {
				s.cancel()
				s.c.CloseNow()
				return
			}
		}
	}
}

// samePrincipal reports whether a and b grant the same; ExpiresAt is
// compared as an instant, whatever its location.
func samePrincipal(a, b identity.Principal) bool {
	return a.KeyID == b.KeyID && a.Role == b.Role && a.Application == b.Application &&
		a.Supplier == b.Supplier && a.ExpiresAt.Equal(b.ExpiresAt)
}

// ackedSafe and principalSafe read the sign-in from another goroutine.
func (s *session) ackedSafe() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyID != ""
}

func (s *session) principalSafe() (identity.Principal, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.who, s.token
}
