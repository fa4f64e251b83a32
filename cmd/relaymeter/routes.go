package main

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/ws"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// wsRoutes are the named services the WebSocket edge serves next to its
// default one: the configured services that name an upstream, each of
// which must be a WEBSOCKET_JSONRPC service. Several upstreams make a pool
// the service's clients fail over within. A service's limits are base with
// what its entry sets over it.
func wsRoutes(services []serviceConfig, base ws.Limits, log *slog.Logger) (map[string]ws.Route, error) {
	want := event.Protocol_WEBSOCKET_JSONRPC.String()
	routes := map[string]ws.Route{}
	for _, s := range services {
		if len(s.Upstream) == 0 {
			continue
		}
		switch {
		case s.Protocol != want:
			return nil, fmt.Errorf("service %s: upstream: only %s services are routed by the WebSocket edge, and this one's protocol is %s", s.ID, want, s.Protocol)
		}
		for _, u := range s.Upstream {
			switch {
			case strings.TrimSpace(u) == "":
				return nil, fmt.Errorf("service %s: upstream: empty URL", s.ID)
			case strings.Contains(u, ","):
				return nil, fmt.Errorf("service %s: upstream %s: a comma in a URL separates upstreams; percent-encode it (%%2C)", s.ID, redactURL(u))
			}
		}
		if _, dup := routes[s.ID]; dup {
			return nil, fmt.Errorf("service %s: configured twice with an upstream", s.ID)
		}
		limits, err := serviceLimits(s, base)
		if err != nil {
			return nil, err
		}
		routes[s.ID] = ws.Route{Upstream: strings.Join(s.Upstream, ","), PayloadCapture: serviceCapture(s, log), Limits: limits}
	}
	return routes, nil
}

// serviceCapture is how much of each payload the edge records for s, nil
// for the edge's default: its payload_capture, else whole when its policy
// reads payloads (a cut payload cannot be priced).
func serviceCapture(s serviceConfig, log *slog.Logger) *int64 {
	reads := policy.NeedsPayload(s.Policy)
	if c := s.PayloadCapture; c != nil {
		if reads && *c >= 0 {
			log.Warn("edge ws: the service's policy reads payloads, and payload_capture cuts them: longer ones are priced 0 with a policy_error finding",
				"service", s.ID, "policy", s.Policy, "payload_capture", *c)
		}
		return c
	}
	if reads {
		whole := int64(-1)
		return &whole
	}
	return nil
}

// defaultCapture is how much of each payload the edge records for its
// default service id: as serviceCapture says when services configure it,
// else capture.
func defaultCapture(services []serviceConfig, id string, capture int64, log *slog.Logger) int64 {
	for _, s := range services {
		if s.ID == id {
			if c := serviceCapture(s, log); c != nil {
				return *c
			}
		}
	}
	return capture
}

// describeRoutes lists routes for a log line, by service id, with their
// upstreams redacted.
func describeRoutes(routes map[string]ws.Route) string {
	var out []string
	for id, r := range routes {
		out = append(out, "/"+id+"/ → "+redactURLs(r.Upstream))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// upstreams are the upstream URLs of a service the WebSocket edge routes
// to: one URL or a list in YAML, a pool its clients fail over within.
type upstreams []string

// UnmarshalYAML accepts a single URL or a list of URLs.
func (u *upstreams) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*u = nil
			return nil
		}
		*u = upstreams{n.Value}
		return nil
	case yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		*u = list
		return nil
	}
	return fmt.Errorf("line %d: upstream: want a URL or a list of URLs", n.Line)
}
