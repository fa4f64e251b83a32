package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// TestFailoverMetered runs the whole pipeline (edge, Kafka, meter,
// Postgres, GraphQL) with a pool of two simulated nodes on one chain, and
// go-ethereum's ethclient, unchanged, behind a TCP tap: the node the
// client is on is killed with a call in flight. The subscription keeps
// delivering heads under its id, none twice; the call gets -32603; and
// the messages that crossed the tap are exactly the ones recorded as
// crossing, and usage bills exactly those that crossed but for the
// edge's own answer.
func TestFailoverMetered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const app = "failover-ethclient"
	chain := ethsim.NewChain()
	var nodes [2]*ethsim.Node
	var urls []string
	for i := range nodes {
		nodes[i] = ethsim.New(ethsim.Config{HeadInterval: -1, Chain: chain, FullHeaders: true, TestMethods: true})
		srv := httptest.NewServer(nodes[i])
		t.Cleanup(srv.Close)
		urls = append(urls, "ws"+strings.TrimPrefix(srv.URL, "http"))
	}
	ts := startTestStack(t, ctx, "failover", strings.Join(urls, ","))
	tap := startTap(t, ts.edge)
	ec, err := ethclient.DialContext(ctx, "ws://"+tap.addr()+"/"+app)
	if err != nil {
		t.Fatal(err)
	}
	heads := make(chan *types.Header, 16)
	sub, err := ec.SubscribeNewHead(ctx, heads)
	if err != nil {
		t.Fatal(err)
	}
	on := -1
	for on < 0 {
		for i, n := range nodes {
			if n.Subscriptions() > 0 {
				on = i
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	var got []uint64
	next := func() {
		t.Helper()
		select {
		case h := <-heads:
			got = append(got, h.Number.Uint64())
		case err := <-sub.Err():
			t.Fatalf("subscription ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("no head; got %v", got)
		}
	}
	chain.Next(ctx)
	nodes[1-on].Freeze()
	chain.Next(ctx)
	next()
	next()
	callErr := make(chan error, 1)
	go func() {
		var r any
		callErr <- ec.Client().CallContext(ctx, &r, "ethsim_hang")
	}()
	for nodes[on].Hanging() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	nodes[on].Kill()
	var re rpc.Error
	if err := <-callErr; !errors.As(err, &re) || re.ErrorCode() != -32603 {
		t.Fatalf("call in flight: %v, want -32603", err)
	}
	for nodes[1-on].Subscriptions() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	nodes[1-on].Thaw(ctx) // the head the client has, then the chain's
	chain.Next(ctx)
	next()
	if len(got) != 3 || got[2] != got[1]+1 || got[1] != got[0]+1 {
		t.Fatalf("heads %v: want three consecutive", got)
	}
	sub.Unsubscribe()
	ec.Close()
	tapped := tap.wait(t, ctx)

	// The recorded messages that crossed, direction by direction, are the
	// frames the tap saw, byte for byte; the others are the edge's own.
	evs := streamOf(t, ctx, ts.cluster.Brokers, app)
	var crossed [2][]*event.Message
	var edgeAnswers, absorbed, resubscribes int
	var resubscribeBytes int64
	for _, ev := range evs[1 : len(evs)-1] {
		m := ev.GetMessage()
		d := 0
		if m.Direction == event.Direction_UPSTREAM_TO_CLIENT {
			d = 1
		}
		switch {
		case m.AbsorbedByEdge:
			absorbed++
		case m.Origin == event.Origin_EDGE && d == 0:
			// the edge's re-subscription: crossed to the new node, not the tap
			resubscribes++
			resubscribeBytes += int64(m.PayloadSize)
		default:
			if m.Origin == event.Origin_EDGE {
				edgeAnswers++
			}
			crossed[d] = append(crossed[d], m)
		}
	}
	var tapBytes, edgeBytes int64
	for d := range crossed {
		if len(crossed[d]) != len(tapped[d]) {
			t.Fatalf("direction %d: %d messages recorded as crossing, the tap saw %d", d, len(crossed[d]), len(tapped[d]))
		}
		for i, m := range crossed[d] {
			w := tapped[d][i]
			if sum := sha256.Sum256(w.payload); !bytes.Equal(m.PayloadSha256, sum[:]) {
				t.Fatalf("direction %d message %d: recorded %.200s, crossed %.200s", d, i, m.Payload, w.payload)
			}
			if m.Origin == event.Origin_EDGE {
				edgeBytes += int64(len(w.payload))
			} else {
				tapBytes += int64(len(w.payload))
			}
		}
	}
	// The -32603 answer; the re-subscription's answer and the duplicate
	// head absorbed; one re-subscription.
	if edgeAnswers != 1 || absorbed != 2 || resubscribes != 1 {
		t.Fatalf("%d edge answers, %d absorbed messages, %d re-subscriptions; want 1, 2, 1", edgeAnswers, absorbed, resubscribes)
	}
	// Billed: what crossed between the client and its upstreams, but the
	// edge's answer; counted: everything that crossed, the edge's answer
	// (received by the client) and its re-subscription (sent to the new
	// node, before the client's unsubscribe crossed) included, unbilled.
	billed := int64(len(tapped[0]) + len(tapped[1]) - edgeAnswers)
	want := usageCounts{Messages: billed + int64(edgeAnswers+resubscribes), Relays: billed, Units: billed,
		Bytes: tapBytes + edgeBytes + resubscribeBytes}
	u := waitUsage(t, ctx, "http://"+ts.api, "test-key", `{service:"eth", application:"`+app+`"}`, want.Messages)
	if u != want {
		t.Fatalf("usage = %+v, want %+v (the edge's answer: %d bytes; its re-subscription: %d)", u, want, edgeBytes, resubscribeBytes)
	}
	t.Logf("usage %+v: %d frames crossed the tap, the edge's answer among them", u, len(tapped[0])+len(tapped[1]))
}
