package chain_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/chain"
	"github.com/relaymeter/relaymeter/internal/cometsim"
)

// TestCometBFT reads a simulated node over HTTP: its head advances, a
// block reads back with the head's time and hash, a block not produced yet
// is ErrNoBlock, and the network is the node's.
func TestCometBFT(t *testing.T) {
	n := cometsim.Start("pocket-test", 50*time.Millisecond)
	defer n.Close()
	c := &chain.CometBFT{URL: n.URL()}
	ctx := context.Background()
	first, err := c.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	head, err := c.Head(ctx)
	if err != nil || head.Height <= first.Height || !head.Time.After(first.Time) {
		t.Fatalf("head %+v after %+v, %v: want it advanced", head, first, err)
	}
	b, err := c.Block(ctx, head.Height)
	if err != nil || b.Height != head.Height || !b.Time.Equal(head.Time) || string(b.Hash) != string(head.Hash) || len(b.Hash) != 32 {
		t.Fatalf("block %+v, %v; head %+v", b, err, head)
	}
	if _, err := c.Block(ctx, head.Height+1000); !errors.Is(err, chain.ErrNoBlock) {
		t.Fatalf("a block not produced: %v, want ErrNoBlock", err)
	}
	if net, err := c.Network(ctx); err != nil || net != "pocket-test" {
		t.Fatalf("network %q, %v", net, err)
	}
}
