package graphql

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/relaymeter/relaymeter/identity"
)

// Keys resolves the API keys callers present; *identity.Cache and
// *identity.Registry satisfy it.
type Keys interface {
	Resolve(ctx context.Context, secret string) (identity.Principal, error)
}

// AdminKeyID is the key id of the principal that Config.AdminKey stands for.
const AdminKeyID = "admin-key"

// principalKey is the context key of the caller's principal.
type principalKey struct{}

// withPrincipal returns ctx carrying p, the caller every resolver below
// answers for.
func withPrincipal(ctx context.Context, p identity.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalFrom returns the caller of ctx. A context without one yields
// the zero Principal, whose role is none: it may see nothing.
func principalFrom(ctx context.Context) identity.Principal {
	p, _ := ctx.Value(principalKey{}).(identity.Principal)
	return p
}

// errNoCredential is a request without a bearer token.
var errNoCredential = &identity.RefusedError{Reason: "no credential"}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// authenticate returns the principal of the key token: the admin key of
// the configuration, or a key of the registry. Refusals wrap
// identity.ErrRefused; a registry that cannot answer is
// identity.ErrUnavailable.
func (h *handler) authenticate(ctx context.Context, token string) (identity.Principal, error) {
	if token == "" {
		return identity.Principal{}, errNoCredential
	}
	if h.adminKey {
		// Comparing hashes keeps the comparison constant-time whatever
		// the lengths.
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], h.keyHash[:]) == 1 {
			return identity.Principal{KeyID: AdminKeyID, Role: identity.RoleAdmin}, nil
		}
	}
	if h.keys == nil {
		return identity.Principal{}, &identity.RefusedError{Reason: "unknown"}
	}
	return h.keys.Resolve(ctx, token)
}

// authError writes the HTTP answer to a request authenticate refused.
func authError(w http.ResponseWriter, err error) {
	if errors.Is(err, identity.ErrRefused) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="relaymeter"`)
		writeError(w, http.StatusUnauthorized, CodeUnauthenticated, "missing, unknown, revoked or expired API key: send Authorization: Bearer <key>")
		return
	}
	writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the key registry cannot be reached; retry")
}
