package ws_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/ws"
	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// pool is two simulated nodes on one chain, so that they agree on every
// head.
type pool struct {
	chain *ethsim.Chain
	nodes [2]*ethsim.Node
	srvs  [2]*httptest.Server
}

func startPool(t testing.TB) *pool {
	p := &pool{chain: ethsim.NewChain()}
	for i := range p.nodes {
		p.nodes[i] = ethsim.New(ethsim.Config{HeadInterval: -1, Chain: p.chain, FullHeaders: true, TestMethods: true,
			SubscriptionIDBase: uint64(i) << 32}) // the ids differ: the edge must map them
		p.srvs[i] = httptest.NewServer(p.nodes[i])
		t.Cleanup(p.srvs[i].Close)
	}
	return p
}

func (p *pool) url(i int) string { return "ws" + strings.TrimPrefix(p.srvs[i].URL, "http") }

// serving is the node the client's subscription is on.
func (p *pool) serving(t *testing.T) int {
	t.Helper()
	var on int
	waitFor(t, "a node serving the subscription", func() bool {
		for i, n := range p.nodes {
			if n.Subscriptions() > 0 {
				on = i
				return true
			}
		}
		return false
	})
	return on
}

func poolEdge(t *testing.T, p *pool, mod func(*ws.Config)) *env {
	return setup(t, func(c *ws.Config) {
		c.Upstream = p.url(0) + "," + p.url(1)
		c.HealthInterval = time.Hour // moves here are the kill's, not the health checks'
		c.DialTimeout = 5 * time.Second
		if mod != nil {
			mod(c)
		}
	})
}

// TestFailoverEthclient: go-ethereum's ethclient, unchanged, subscribed to
// newHeads through the edge; the node it is on is killed with a call in
// flight. The call gets -32603, the subscription keeps delivering heads
// under its id (ethclient would drop notifications of any other id), the
// head the new node sends again is not delivered twice, and the events
// say which messages crossed and which the edge kept.
func TestFailoverEthclient(t *testing.T) {
	for _, fwd := range []ws.Forwarding{ws.ForwardAfterAck, ws.ForwardAfterQueue} {
		t.Run(map[ws.Forwarding]string{ws.ForwardAfterAck: "after-ack", ws.ForwardAfterQueue: "after-queue"}[fwd], func(t *testing.T) {
			testFailoverEthclient(t, fwd)
		})
	}
}

func testFailoverEthclient(t *testing.T, fwd ws.Forwarding) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := startPool(t)
	e := poolEdge(t, p, func(c *ws.Config) { c.Forwarding = fwd })

	ec, err := ethclient.DialContext(ctx, e.url("app"))
	if err != nil {
		t.Fatal(err)
	}
	heads := make(chan *types.Header, 16)
	sub, err := ec.SubscribeNewHead(ctx, heads)
	if err != nil {
		t.Fatal(err)
	}
	on := p.serving(t)
	other := p.nodes[1-on]
	var got []uint64
	next := func() *types.Header {
		t.Helper()
		select {
		case h := <-heads:
			got = append(got, h.Number.Uint64())
			return h
		case err := <-sub.Err():
			t.Fatalf("subscription ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("no head; got %v", got)
		}
		return nil
	}
	p.chain.Next(ctx)
	p.chain.Next(ctx)
	other.Freeze() // falls one block behind
	last := p.chain.Next(ctx)
	for range 3 {
		next()
	}

	// A call in flight when the node dies.
	callErr := make(chan error, 1)
	go func() {
		var r any
		callErr <- ec.Client().CallContext(ctx, &r, "ethsim_hang")
	}()
	waitFor(t, "the call to reach the node", func() bool { return p.nodes[on].Hanging() == 1 })
	p.nodes[on].Kill()
	killed := time.Now()

	select {
	case err := <-callErr:
		var re rpc.Error
		if !errors.As(err, &re) || re.ErrorCode() != -32603 || re.Error() != "upstream connection lost, retry" {
			t.Fatalf("call in flight: %v, want -32603 upstream connection lost, retry", err)
		}
	case <-ctx.Done():
		t.Fatalf("the call in flight was never answered\n%s", e.logs.String())
	}
	waitFor(t, "the subscription re-created", func() bool { return other.Subscriptions() == 1 })
	other.Thaw(ctx) // sends the head the client has, then follows the chain
	p.chain.Next(ctx)
	h := next()
	took := time.Since(killed)
	if h.Number.Uint64() != last+1 {
		t.Fatalf("first head after the move: %d, want %d (heads %v)", h.Number, last+1, got)
	}
	p.chain.Next(ctx)
	next()
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("heads %v: want consecutive, none twice", got)
		}
	}
	if n, _ := ec.BlockNumber(ctx); n != last+2 {
		t.Fatalf("BlockNumber after the move: %d, want %d", n, last+2)
	}
	t.Logf("failover: %v from the kill to the first head from the new node", took)
	sub.Unsubscribe() // with the client's id; the node gets its own
	waitFor(t, "the unsubscribe to reach the node", func() bool { return other.Subscriptions() == 0 })
	ec.Close()

	// What crossed: every message recorded toward the client reached it
	// but those the edge kept (the answer to its re-subscription and the
	// duplicate head).
	var lost, notifications, absorbed, resubscribes int
	var local string // the client's subscription id
	for _, ev := range only(t, e.events(t)) {
		m := ev.GetMessage()
		if m == nil {
			continue
		}
		if m.Direction == event.Direction_CLIENT_TO_UPSTREAM {
			if m.Origin == event.Origin_EDGE {
				resubscribes++
				if m.Method != "eth_subscribe" || !strings.HasSuffix(m.RpcId, ":"+local+`"`) {
					t.Fatalf("the edge's message %s %s: want its eth_subscribe naming %s", m.Method, m.RpcId, local)
				}
			}
			continue
		}
		if m.AbsorbedByEdge {
			absorbed++ // the re-subscription's answer and the duplicate head
			if m.Role == event.Role_RESPONSE && (m.SubscriptionId == "" || m.SubscriptionId == local) {
				t.Fatalf("absorbed answer with subscription %q: want the new node's id, not the client's %s", m.SubscriptionId, local)
			}
		}
		if strings.Contains(string(m.Payload), "-32603") != (m.Origin == event.Origin_EDGE) {
			t.Fatalf("message %.100s of origin %v: only the -32603 answer is the edge's", m.Payload, m.Origin)
		}
		if local == "" && m.SubscriptionId != "" {
			local = m.SubscriptionId
		}
		if m.Role == event.Role_NOTIFICATION {
			notifications++
			// Events record the client's id, before and after the move.
			if m.SubscriptionId != local || !strings.Contains(string(m.Payload), `"subscription":"`+local+`"`) {
				t.Fatalf("notification recorded with subscription %q, payload %.120s: want the client's %s", m.SubscriptionId, m.Payload, local)
			}
		}
		if strings.Contains(string(m.Payload), "-32603") {
			lost++
		}
	}
	// 3 heads, the duplicate, 2 heads; one -32603 answer.
	if notifications != 6 || lost != 1 || absorbed != 2 || resubscribes != 1 {
		t.Fatalf("%d notifications, %d -32603 answers, %d absorbed, %d re-subscriptions recorded; want 6, 1, 2, 1",
			notifications, lost, absorbed, resubscribes)
	}
}

// Without another upstream that answers, a client whose upstream is lost
// is closed with 1012 and a reason that says so.
func TestFailoverNoOtherUpstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := startPool(t)
	e := poolEdge(t, p, nil)
	c := e.dial(t, "app")
	exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`, 1)
	on := p.serving(t)
	p.nodes[1-on].Kill()
	p.nodes[on].Kill()
	_, _, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusServiceRestart || !strings.Contains(ce.Reason, "no healthy upstream") {
		t.Fatalf("read: %v, want 1012 no healthy upstream", err)
	}
	if got := e.metric(t, "relaymeter_ws_edge_failovers_total", "failed"); got != 1 {
		t.Fatalf("failovers failed = %v, want 1", got)
	}
}

// A pool's upstream that falls more than MaxHeadLag blocks behind is
// unhealthy: its clients move to another, and new clients go elsewhere.
func TestFailoverHeadLag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := startPool(t)
	e := poolEdge(t, p, func(c *ws.Config) { c.HealthInterval, c.MaxHeadLag = 20*time.Millisecond, 2 })
	c := e.dial(t, "app")
	sub := subscriptionID(t, exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`, 1)[0])
	on := p.serving(t)
	p.nodes[on].Freeze()
	for range 3 {
		p.chain.Next(ctx)
	}
	waitFor(t, "the client moved", func() bool { return p.nodes[1-on].Subscriptions() == 1 })
	p.chain.Next(ctx)
	for {
		msg := read(t, c)
		if strings.Contains(msg, `"eth_subscription"`) {
			if !strings.Contains(msg, sub) {
				t.Fatalf("notification %s: want subscription %s", msg, sub)
			}
			if strings.Contains(msg, `"number":"0x1000004"`) {
				break
			}
		}
	}
	if got := e.metric(t, "relaymeter_ws_edge_failovers_total", "moved"); got != 1 {
		t.Fatalf("failovers moved = %v, want 1", got)
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// An eth_subscribe beyond MaxSubscriptions is answered by the edge with
// -32005 and never reaches a node, with one upstream (counted by the
// classifier) and with a pool (package subscriptions); an unsubscribe
// makes room again.
func TestSubscriptionLimit(t *testing.T) {
	for _, pooled := range []bool{false, true} {
		t.Run(map[bool]string{false: "one-upstream", true: "pool"}[pooled], func(t *testing.T) {
			var e *env
			var subs func() int
			if pooled {
				p := startPool(t)
				e = poolEdge(t, p, func(c *ws.Config) { c.MaxSubscriptions = 2 })
				subs = func() int { return p.nodes[0].Subscriptions() + p.nodes[1].Subscriptions() }
			} else {
				e = setup(t, func(c *ws.Config) { c.MaxSubscriptions = 2 })
				subs = e.up.node.Subscriptions
			}
			c := e.dial(t, "app")
			defer c.Close(websocket.StatusNormalClosure, "")
			var ids []string
			for id := 1; id <= 2; id++ {
				ids = append(ids, subscriptionID(t, exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":`+strconv.Itoa(id)+`,"method":"eth_subscribe","params":["newHeads"]}`, 1)[0]))
			}
			got := exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":3,"method":"eth_subscribe","params":["newHeads"]}`, 1)[0]
			if want := `{"jsonrpc":"2.0","id":3,"error":{"code":-32005,"message":"too many subscriptions on this connection (limit 2)"}}`; got != want {
				t.Fatalf("third eth_subscribe answered %s, want %s", got, want)
			}
			if n := subs(); n != 2 {
				t.Fatalf("%d subscriptions on the nodes, want 2", n)
			}
			// The call after it is still answered by the node, in order.
			if got := exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":4,"method":"eth_chainId"}`, 1)[0]; got != `{"jsonrpc":"2.0","id":4,"result":"0x1"}` {
				t.Fatalf("eth_chainId answered %s", got)
			}
			if got := exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":5,"method":"eth_unsubscribe","params":["`+ids[0]+`"]}`, 1)[0]; got != `{"jsonrpc":"2.0","id":5,"result":true}` {
				t.Fatalf("eth_unsubscribe answered %s", got)
			}
			subscriptionID(t, exchange(t, c, websocket.MessageText, `{"jsonrpc":"2.0","id":6,"method":"eth_subscribe","params":["newHeads"]}`, 1)[0])
			if got := e.metric(t, "relaymeter_ws_edge_absorbed_total", "subscriptions"); got != 1 {
				t.Fatalf("absorbed_total{limit=subscriptions} = %v, want 1", got)
			}
		})
	}
}
