package graphql

import (
	"context"
	"testing"
)

// TestMessageOrigin: Message.origin says who wrote a message (as the
// direction says for an edge that did not), absorbedByEdge what the edge
// kept back, which did not cross even where the close's through-seq
// covers it.
func TestMessageOrigin(t *testing.T) {
	pool := seeded(t)
	const streamD = "01900000-0000-7000-8000-00000000000d"
	for _, q := range []string{
		`INSERT INTO streams (stream_id, topic, kafka_partition, protocol, service, application, supplier, edge_id,
			policy_id, compute_units, opened_at, state_version, last_seq, chain, last_observed_at, relays,
			closed_at, forwarded_to_upstream_seq, forwarded_to_client_seq) VALUES
			($1, 't', 0, 'WEBSOCKET_JSONRPC', 'eth', 'app1', 'supA', 'e1', 1, 1, $2, 1, 4, '\xab', $2, 0, $2, 3, 4)`,
		`INSERT INTO messages (stream_id, seq, observed_at, direction, role, method, wire_size, payload_size, units, origin, absorbed_by_edge) VALUES
			($1, 1, $2, 1, 1, 'eth_chainId', 10, 10, 1, 1, false),
			($1, 2, $2, 2, 2, '', 10, 10, 1, 0, false),
			($1, 3, $2, 1, 1, 'admin_peers', 10, 10, 0, 1, true),
			($1, 4, $2, 2, 4, '', 10, 10, 0, 3, false)`,
	} {
		if _, err := pool.Exec(context.Background(), q, streamD, t0); err != nil {
			t.Fatal(err)
		}
	}
	srv := serve(t, pool, Config{})
	var got struct {
		Stream struct {
			Messages struct {
				Edges []struct {
					Node struct {
						Seq            int64
						Origin         string
						AbsorbedByEdge bool
						Crossed        bool
					}
				}
			}
		}
	}
	data(t, srv, `{ stream(id: "`+streamD+`") { messages { edges { node { seq origin absorbedByEdge crossed } } } } }`, nil, &got)
	want := []struct {
		origin            string
		absorbed, crossed bool
	}{{"CLIENT", false, true}, {"UPSTREAM", false, true}, {"CLIENT", true, false}, {"EDGE", false, true}}
	m := got.Stream.Messages.Edges
	if len(m) != len(want) {
		t.Fatalf("%d messages, want %d", len(m), len(want))
	}
	for i, w := range want {
		if n := m[i].Node; n.Origin != w.origin || n.AbsorbedByEdge != w.absorbed || n.Crossed != w.crossed {
			t.Errorf("seq %d: %+v, want %+v", n.Seq, n, w)
		}
	}
}
