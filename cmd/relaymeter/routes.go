package main

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/ws"
)

// wsRoutes are the named services the WebSocket edge serves next to its
// default one: the configured services that name an upstream, each of
// which must be a WEBSOCKET_JSONRPC service. Of several upstreams, the
// first is used.
func wsRoutes(services []serviceConfig, log *slog.Logger) (map[string]ws.Route, error) {
	want := event.Protocol_WEBSOCKET_JSONRPC.String()
	routes := map[string]ws.Route{}
	for _, s := range services {
		if len(s.Upstream) == 0 {
			continue
		}
		switch {
		case s.Protocol != want:
			return nil, fmt.Errorf("service %s: upstream: only %s services are routed by the WebSocket edge, and this one's protocol is %s", s.ID, want, s.Protocol)
		case strings.TrimSpace(s.Upstream[0]) == "":
			return nil, fmt.Errorf("service %s: upstream: empty URL", s.ID)
		}
		if _, dup := routes[s.ID]; dup {
			return nil, fmt.Errorf("service %s: configured twice with an upstream", s.ID)
		}
		if len(s.Upstream) > 1 {
			log.Warn("edge ws: only the first upstream of a service is dialled; failover to the others is issue #12",
				"service", s.ID, "upstream", redactURL(s.Upstream[0]), "ignored", len(s.Upstream)-1)
		}
		routes[s.ID] = ws.Route{Upstream: s.Upstream[0]}
	}
	return routes, nil
}

// describeRoutes lists routes for a log line, by service id, with their
// upstreams redacted.
func describeRoutes(routes map[string]ws.Route) string {
	var out []string
	for id, r := range routes {
		out = append(out, "/"+id+"/ → "+redactURL(r.Upstream))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// upstreams are the upstream URLs of a service the WebSocket edge routes
// to: one URL or a list in YAML. Only the first is dialled for now;
// failover to the others is issue #12's.
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
