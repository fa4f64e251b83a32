package ws

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ingest/event"
)

// Keys resolves the API key a client presents to the principal it stands
// for; *identity.Cache satisfies it.
type Keys interface {
	Resolve(ctx context.Context, secret string) (identity.Principal, error)
}

// keyPathPrefix starts the path form of a credential: ws://HOST/v1/<key>.
const keyPathPrefix = "/v1/"

// JSON-RPC error codes of the bodies of refused handshakes.
const (
	// codeRefused answers a credential refused (HTTP 401).
	codeRefused = -32001
	// codeUnavailable answers a key that cannot be resolved now (HTTP 503).
	codeUnavailable = -32000
	// codeNoService answers a path that names no configured service (HTTP
	// 404).
	codeNoService = -32004
)

// Reasons a connection is refused before its upgrade: the values of the
// reason label of relaymeter_ws_edge_auth_refused_total.
const (
	reasonMissing     = "missing"       // no key, and open access is off
	reasonMalformed   = "malformed"     // not one of the accepted forms
	reasonMismatch    = "mismatch"      // path and header disagree
	reasonUnknown     = "unknown"       // no such key
	reasonRevoked     = "revoked"       // the key is revoked
	reasonExpired     = "expired"       // the key has expired
	reasonDisabled    = "disabled"      // the key's application is disabled
	reasonRole        = "role"          // not an application key
	reasonNoKeys      = "keys_off"      // a key, and the edge resolves none
	reasonUnavailable = "unavailable"   // the registry cannot be asked
	reasonNoService   = "no_service"    // the path names no configured service
	reasonPerIP       = "per_ip"        // the client address has as many connections as it may
	reasonForwarded   = "forwarded"     // a trusted proxy's X-Forwarded-For is malformed
	reasonOther       = "other_refusal" // a refusal of a reason not known here
)

var refusalReasons = []string{reasonMissing, reasonMalformed, reasonMismatch, reasonUnknown, reasonRevoked,
	reasonExpired, reasonDisabled, reasonRole, reasonNoKeys, reasonUnavailable, reasonNoService, reasonPerIP, reasonForwarded, reasonOther}

// refusal is why a connection is not let in, and how it is answered.
type refusal struct {
	status int
	reason string // metric label and log
	msg    string // to the client
	keyID  string // the key's id where the registry knows it
	err    error  // for the log; never holds the secret
}

// biller is who a connection bills: the application, and the key that
// named it ("" in the open-access form).
type biller struct {
	app, keyID string
}

const usage = "use ws://HOST/v1/<key> or an Authorization: Bearer <key> header"

// credential is the route a request's path takes, and the key it
// presents or, in open access, the application its path names. It reads
// the request only, asking nobody.
//
// The route, from the path as sent (docs/ws-edge.md, "Routes"): a first
// segment that is a configured service's id, byte for byte, routes to that
// service, and the rest of the path (what follows the segment) is read as
// below; any other path is the default service's, read whole. A first
// segment spelled like a service id but naming none is refused with 404
// when a key form follows it (/<x>/v1…), and in open access whenever
// another segment follows it: only a single segment names an application
// of the default service.
//
// The accepted forms of the rest, byte for byte as sent (the query is
// ignored):
//   - /v1/<key>, with no Authorization header or one naming the same key;
//   - "" (named services only), /, /v1 or /v1/ with an Authorization:
//     Bearer <key> header (the scheme in any case, one or more spaces,
//     nothing after the key);
//   - open access only: /<application>, one segment, with no
//     Authorization header.
//
// A key is "rmk_" and 64 lowercase hex digits. Anything else under /v1, a
// second Authorization header, a scheme other than Bearer, or a header
// beside an application path is malformed; no key at all is missing.
func (e *Edge) credential(r *http.Request) (rt *route, secret, app string, ref *refusal) {
	header, ref := bearer(r.Header)
	if ref != nil {
		return nil, "", "", ref
	}
	path := r.URL.EscapedPath()
	rt = e.def
	named := false
	if len(path) > 1 && path[0] == '/' {
		first, rest := path[1:], ""
		if i := strings.IndexByte(first, '/'); i >= 0 {
			first, rest = first[:i], first[i:]
		}
		if first != "v1" && isServiceSegment(first) {
			switch sr := e.routes[first]; {
			case sr != nil:
				rt, path, named = sr, rest, true
			case isKeyRoute(rest) || e.cfg.OpenAccess && rest != "" && rest != "/":
				// Never echo nor log the segment: it may be a key.
				return nil, "", "", &refusal{status: http.StatusNotFound, reason: reasonNoService,
					msg: "no such service: use ws://HOST/<service>/v1/<key> with a service this edge serves, or " + usage}
			}
		} else if e.cfg.OpenAccess && first != "v1" && rest != "" && rest != "/" {
			return nil, "", "", &refusal{status: http.StatusNotFound, reason: reasonNoService,
				msg: "no such service: only ws://HOST/<application> or ws://HOST/<service>/<application> name an application"}
		}
	}
	secret, app, ref = e.keyForm(r, path, header, named)
	if ref != nil {
		return nil, "", "", ref
	}
	return rt, secret, app, nil
}

// keyForm is the key, or in open access the application, of path, the
// whole path for the default service or what follows a named service's
// segment.
func (e *Edge) keyForm(r *http.Request, path, header string, named bool) (secret, app string, ref *refusal) {
	switch {
	case path == "" || path == "/" || path == "/v1" || path == keyPathPrefix:
		if header != "" {
			return header, "", nil
		}
		if e.cfg.OpenAccess && (path == "" || path == "/") {
			return "", "", &refusal{status: http.StatusBadRequest, reason: reasonMissing,
				msg: "the last path segment must name the application, or " + usage}
		}
		return "", "", &refusal{status: http.StatusUnauthorized, reason: reasonMissing, msg: "an API key is required: " + usage}
	case strings.HasPrefix(path, keyPathPrefix):
		key := path[len(keyPathPrefix):]
		if !identity.LooksLikeSecret(key) {
			return "", "", &refusal{status: http.StatusUnauthorized, reason: reasonMalformed, msg: "malformed API key or path: " + usage}
		}
		if header != "" && header != key {
			return "", "", &refusal{status: http.StatusUnauthorized, reason: reasonMismatch,
				msg: "the path and the Authorization header name different keys"}
		}
		return key, "", nil
	case !e.cfg.OpenAccess:
		if header != "" {
			return "", "", &refusal{status: http.StatusUnauthorized, reason: reasonMalformed,
				msg: "with an Authorization header the path must be / or /v1"}
		}
		return "", "", &refusal{status: http.StatusUnauthorized, reason: reasonMissing, msg: "an API key is required: " + usage}
	case header != "":
		return "", "", &refusal{status: http.StatusUnauthorized, reason: reasonMalformed,
			msg: "a path naming an application and an Authorization header together: " + usage}
	case named && strings.IndexByte(path[1:], '/') >= 0:
		return "", "", &refusal{status: http.StatusNotFound, reason: reasonNoService,
			msg: "a service's application path is ws://HOST/<service>/<application>, one segment"}
	}
	app = r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	app, _ = event.CleanText(app, event.MaxIDLen)
	if app == "" {
		return "", "", &refusal{status: http.StatusBadRequest, reason: reasonMissing,
			msg: "the last path segment must name the application, or " + usage}
	}
	return "", app, nil
}

// bearer is the key of the request's Authorization header, "" without one.
func bearer(h http.Header) (string, *refusal) {
	vs := h.Values("Authorization")
	if len(vs) == 0 {
		return "", nil
	}
	bad := &refusal{status: http.StatusUnauthorized, reason: reasonMalformed, msg: "malformed Authorization header: want Bearer <key>"}
	if len(vs) > 1 {
		return "", bad
	}
	scheme, token, ok := strings.Cut(vs[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", bad
	}
	token = strings.TrimLeft(token, " ")
	if !identity.LooksLikeSecret(token) {
		return "", bad
	}
	return token, nil
}

// resolve turns a key into who it bills: an application key whose
// application is enabled.
func (e *Edge) resolve(ctx context.Context, secret string) (biller, *refusal) {
	if e.cfg.Keys == nil {
		return biller{}, &refusal{status: http.StatusUnauthorized, reason: reasonNoKeys, msg: "this edge accepts no API keys"}
	}
	p, err := e.cfg.Keys.Resolve(ctx, secret)
	var re *identity.RefusedError
	switch {
	case errors.As(err, &re):
		reason := reasonOther
		switch re.Reason {
		case "malformed":
			reason = reasonMalformed
		case "unknown":
			reason = reasonUnknown
		case "revoked":
			reason = reasonRevoked
		case "expired":
			reason = reasonExpired
		case "application disabled":
			reason = reasonDisabled
		}
		// Every refusal reads alike to the client: it learns nothing about
		// keys it does not hold.
		return biller{}, &refusal{status: http.StatusUnauthorized, reason: reason, msg: "API key refused", keyID: re.KeyID, err: err}
	case err != nil:
		return biller{}, &refusal{status: http.StatusServiceUnavailable, reason: reasonUnavailable,
			msg: "the key registry is unavailable; try again later", err: err}
	case p.Role != identity.RoleApplication || p.Application == "":
		return biller{}, &refusal{status: http.StatusUnauthorized, reason: reasonRole, keyID: p.KeyID,
			msg: "only an application key opens streams", err: errors.New("ws: a " + string(p.Role) + " key at the edge")}
	}
	return biller{app: p.Application, keyID: p.KeyID}, nil
}

// refuse answers a refused handshake with a JSON-RPC error body, counts it
// and logs it, naming the key by its id only.
func (e *Edge) refuse(w http.ResponseWriter, r *http.Request, ref *refusal) {
	e.m.refused.WithLabelValues(ref.reason).Inc()
	attrs := []any{"reason", ref.reason, "status", ref.status, "client", r.RemoteAddr}
	if ref.keyID != "" {
		attrs = append(attrs, "key", ref.keyID)
	}
	if ref.err != nil {
		attrs = append(attrs, "err", ref.err.Error())
	}
	if ref.status == http.StatusServiceUnavailable {
		e.log.Warn("ws: connection refused", attrs...)
	} else {
		e.log.Info("ws: connection refused", attrs...)
	}
	code := codeRefused
	switch ref.status {
	case http.StatusServiceUnavailable:
		code = codeUnavailable
	case http.StatusNotFound:
		code = codeNoService
	case http.StatusTooManyRequests:
		code = codeLimitExceeded
	}
	body, _ := json.Marshal(rpcError{JSONRPC: "2.0", Error: rpcErrorBody{Code: code, Message: "ws: " + ref.msg}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if ref.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", "Bearer")
	}
	w.WriteHeader(ref.status)
	w.Write(append(body, '\n'))
}

// rpcError is a JSON-RPC 2.0 error response with a null id.
type rpcError struct {
	JSONRPC string       `json:"jsonrpc"`
	ID      *int         `json:"id"`
	Error   rpcErrorBody `json:"error"`
}

type rpcErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}
