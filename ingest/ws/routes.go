package ws

import (
	"fmt"
	"strings"

	"github.com/relaymeter/relaymeter/identity"
)

// Route is a named service the edge serves under its own first path
// segment, ws://HOST/<service>/v1/<key>, next to the default service.
type Route struct {
	// Upstream is the ws:// or wss:// URL the service's clients are
	// proxied to, or several, comma-separated: a pool clients move within
	// when their upstream is lost (Config.Upstream). It may carry
	// credentials, which are never logged or recorded.
	Upstream string
	// PayloadCapture, when not nil, is how much of each payload the
	// service's streams record, as Config.PayloadCapture, instead of the
	// edge's default: a policy that prices payloads needs them whole.
	PayloadCapture *int64
	// Limits, when not nil, are what one client may do on the service's
	// connections, instead of Config.Limits (whole: the caller merges).
	// Connections per address are counted per service.
	Limits *Limits
}

// route is where a connection goes: the service its stream records and
// the pool of upstreams it is proxied to.
type route struct {
	service string
	pool    *pool
	capture int64 // how much of each payload is recorded
	// The first upstream's, as a route of one upstream had them.
	upstream string // as configured: may hold credentials
	redacted string // scheme and host only, for logs and events
	lim      *limits
}

func newRoute(service, upstream string, capture int64) (*route, error) {
	p, err := newPool(service, upstream, 0, nil)
	if err != nil {
		return nil, err
	}
	first := p.members[0]
	return &route{service: service, pool: p, capture: capture, upstream: first.upstream, redacted: first.redacted}, nil
}

// checkServiceID reports whether id can name a service in a path: one
// segment of letters, digits, '-', '_', '.' and '~', matched byte for
// byte, never "v1" (in any case), "." or "..", nor shaped like an API key.
func checkServiceID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty service id")
	case !isServiceSegment(id):
		return fmt.Errorf("service id %q: want letters, digits, '-', '_', '.' or '~' only, as it is matched against the path as sent", id)
	case strings.EqualFold(id, "v1"):
		return fmt.Errorf("service id %q: v1 is reserved for the key forms (ws://HOST/v1/<key>)", id)
	case identity.LooksLikeSecret(id):
		return fmt.Errorf("a service id looks like an API key")
	}
	return nil
}

// isServiceSegment reports whether seg is spelled as a service id can be.
func isServiceSegment(seg string) bool {
	if seg == "" || seg == "." || seg == ".." {
		return false
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}

// isKeyRoute reports whether rest, what follows a path's first segment,
// is a key form: /v1, or /v1/ and anything.
func isKeyRoute(rest string) bool {
	return rest == "/v1" || strings.HasPrefix(rest, keyPathPrefix)
}
