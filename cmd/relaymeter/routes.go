package main

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"

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
