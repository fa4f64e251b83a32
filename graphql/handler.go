// Package graphql is relaymeter's GraphQL API over the ledger: the schema
// (schema.graphqls, embedded), thin resolvers over ledger.Store, and the
// HTTP handler that serves it behind API keys, with GraphiQL at "/".
// Every resolver answers within the caller's scope (scope.go): an
// application or supplier key sees its own rows only.
//
// Errors carry a stable extensions.code (see the Code constants); a
// server failure is logged and shown to the client only as INTERNAL.
package graphql

import (
	"crypto/sha256"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	gql "github.com/graph-gophers/graphql-go"
	gqlerrors "github.com/graph-gophers/graphql-go/errors"

	"github.com/relaymeter/relaymeter/ledger"
)

//go:embed schema.graphqls
var schemaSDL string

//go:embed graphiql.html
var graphiqlPage []byte

// assets are GraphiQL and React, served with the page so that it works
// offline (see assets/LICENSES.txt).
//
//go:embed assets
var assets embed.FS

// Defaults of Config's limits. DefaultMaxDepth leaves room for GraphiQL's
// introspection query (depth 15 in GraphiQL 3); the schema's own types nest
// no deeper than seven, so it bounds only introspection, which every
// caller, holding the admin key, may run.
const (
	DefaultMaxDepth       = 20
	DefaultMaxQueryLength = 32 << 10
	DefaultMaxBodyBytes   = 1 << 20
)

// Config configures the handler.
type Config struct {
	// Store is the ledger the API reads. Required.
	Store *ledger.Store
	// AdminKey is a bearer token that stands for an admin (the key of
	// serve --admin-key and dev). Optional when Keys is set.
	AdminKey string
	// Keys resolves every other bearer token: the keys of the identity
	// registry, usually through an identity.Cache. Optional when AdminKey
	// is set.
	Keys Keys
	// Logger receives server failures; nil discards them.
	Logger *slog.Logger
	// MaxDepth bounds the nesting of a query's selections; 0 means
	// DefaultMaxDepth (20).
	MaxDepth int
	// MaxQueryLength bounds a query's length in bytes; 0 means
	// DefaultMaxQueryLength (32 KiB).
	MaxQueryLength int
	// MaxBodyBytes bounds a request body; 0 means DefaultMaxBodyBytes
	// (1 MiB).
	MaxBodyBytes int64
	// Registry serves the admin mutations and lists, and the names of
	// viewer; usually the *identity.Registry behind Keys. Optional:
	// without it those answer UNAVAILABLE.
	Registry Registry
	// RateLimit is the requests per second each key may send, on
	// average; 0 means DefaultRateLimit (20), a negative rate no limit.
	RateLimit float64
	// RateBurst is how many requests a key may send at once; 0 means
	// DefaultRateBurst (40).
	RateBurst int
	// MaxUsageRows bounds the rows of usageSeries; 0 means
	// DefaultMaxUsageRows (10,000).
	MaxUsageRows int
	// Live bounds live operations (subscriptions over WebSocket).
	Live LiveConfig
	// WhatIf answers whatIf. Optional: without it whatIf answers
	// UNAVAILABLE.
	WhatIf WhatIf
}

// Validate reports what is missing or wrong in c.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("graphql: config: no store")
	case c.AdminKey == "" && c.Keys == nil:
		return errors.New("graphql: config: neither an admin key nor a key registry")
	case c.MaxDepth < 0 || c.MaxQueryLength < 0 || c.MaxBodyBytes < 0 || c.RateBurst < 0 || c.MaxUsageRows < 0:
		return errors.New("graphql: config: negative limit")
	}
	return nil
}

// handler serves the API.
type handler struct {
	schema   *gql.Schema
	keyHash  [sha256.Size]byte
	adminKey bool
	keys     Keys
	log      *slog.Logger
	maxQuery int
	maxBody  int64
	limit    *limiter // nil: no rate limit
	live     *live
}

// NewHandler returns the API's HTTP handler: POST (or GET ?query=)
// /graphql behind "Authorization: Bearer <key>", rate limited per key,
// GraphiQL at GET /, and GET /healthz.
func NewHandler(cfg Config) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxDepth == 0 {
		cfg.MaxDepth = DefaultMaxDepth
	}
	if cfg.MaxQueryLength == 0 {
		cfg.MaxQueryLength = DefaultMaxQueryLength
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxUsageRows == 0 {
		cfg.MaxUsageRows = DefaultMaxUsageRows
	}
	root := &resolver{store: cfg.Store, registry: cfg.Registry, log: cfg.Logger, maxRows: cfg.MaxUsageRows, whatIf: cfg.WhatIf}
	schema, err := gql.ParseSchema(schemaSDL+"\n"+settlementSDL+"\n"+liveSDL+"\n"+auditSDL, root,
		gql.UseStringDescriptions(),
		gql.MaxDepth(cfg.MaxDepth),
		gql.MaxQueryLength(cfg.MaxQueryLength),
		gql.PanicHandler(panicHandler{}),
		gql.Logger(panicLogger{cfg.Logger}),
	)
	if err != nil {
		return nil, fmt.Errorf("graphql: parse schema: %w", err)
	}
	h := &handler{
		schema:   schema,
		keyHash:  sha256.Sum256([]byte(cfg.AdminKey)),
		adminKey: cfg.AdminKey != "",
		keys:     cfg.Keys,
		log:      cfg.Logger,
		maxQuery: cfg.MaxQueryLength,
		maxBody:  cfg.MaxBodyBytes,
		limit:    newLimiter(cfg.RateLimit, cfg.RateBurst, 0),
		live:     newLive(cfg.Live),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /graphql", h.serveGraphQL)
	mux.HandleFunc("GET /graphql", h.upgradeOr(h.serveGraphQL))
	h.routeUsagePage(mux)
	mux.Handle("GET /assets/", http.FileServerFS(assets))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Write(graphiqlPage)
	})
	return mux, nil
}

// request is a GraphQL request, as POSTed or as GET parameters.
type request struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

func (h *handler) serveGraphQL(w http.ResponseWriter, r *http.Request) {
	token, _ := bearer(r)
	who, err := h.authenticate(r.Context(), token)
	if err != nil {
		authError(w, err)
		return
	}
	if !h.limit.allow(w, who.KeyID) {
		return
	}
	var req request
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		req.Query, req.OperationName = q.Get("query"), q.Get("operationName")
		if v := q.Get("variables"); v != "" {
			if err := json.Unmarshal([]byte(v), &req.Variables); err != nil {
				writeError(w, http.StatusBadRequest, CodeBadRequest, "variables: not a JSON object")
				return
			}
		}
	} else {
		body := http.MaxBytesReader(w, r.Body, h.maxBody)
		if err := json.NewDecoder(body).Decode(&req); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeError(w, http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
					fmt.Sprintf("request body exceeds %d bytes", h.maxBody))
				return
			}
			writeError(w, http.StatusBadRequest, CodeBadRequest, "body: not a GraphQL request in JSON")
			return
		}
	}
	switch {
	case strings.TrimSpace(req.Query) == "":
		writeError(w, http.StatusBadRequest, CodeBadRequest, "no query")
		return
	case len(req.Query) > h.maxQuery:
		writeError(w, http.StatusBadRequest, CodeQueryTooLong,
			fmt.Sprintf("query length %d exceeds %d bytes", len(req.Query), h.maxQuery))
		return
	}
	resp := h.schema.Exec(withStreamCache(withPrincipal(r.Context(), who)), req.Query, req.OperationName, req.Variables)
	classify(resp.Errors)
	out, err := json.Marshal(resp)
	if err != nil {
		h.log.ErrorContext(r.Context(), "graphql: encode response", "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, internalError.msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// writeError writes a GraphQL-shaped error response.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(gql.Response{Errors: []*gqlerrors.QueryError{{
		Message: msg, Extensions: map[string]any{"code": code},
	}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
