package ws_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/relaymeter/relaymeter/ingest/ws"
)

// gethBinary returns a geth to run: the one on PATH, else one built (once,
// into the user's cache directory) from the go-ethereum version this
// module requires, as Debian packages none. A geth that cannot be had
// fails the test: it is part of the suite, not optional.
func gethBinary(t *testing.T) string {
	t.Helper()
	if bin, err := exec.LookPath("geth"); err == nil {
		return bin
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/ethereum/go-ethereum").Output()
	version := strings.TrimSpace(string(out))
	if err != nil || version == "" {
		t.Fatalf("no geth on PATH, and go list cannot say which go-ethereum this module requires: %v", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "relaymeter-test", "geth-"+version)
	bin := filepath.Join(dir, "geth")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	install := exec.Command("go", "install", "github.com/ethereum/go-ethereum/cmd/geth@"+version)
	install.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("no geth on PATH, and building geth %s failed (it needs the Go module proxy): %v\n%s", version, err, out)
	}
	return bin
}

// TestFailoverGeth is the failover with real geth nodes (geth --dev, a
// block a second; gethBinary): the client's newHeads
// subscription keeps delivering through ethclient after the node it is
// on is killed. Two dev nodes have chains of their own, so the heads after
// the move are the other chain's: what is checked is that they arrive
// under the same subscription, none twice; the shared-chain checks are
// TestFailoverEthclient's.
func TestFailoverGeth(t *testing.T) {
	bin := gethBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The client must land on the first node: the second is started only
	// once it has (a pool dials past an upstream that refuses).
	first, stopFirst := startGeth(t, ctx, bin, freeTCPPort(t))
	secondPort := freeTCPPort(t)
	e := setup(t, func(c *ws.Config) {
		c.Upstream = "ws://" + first + ",ws://127.0.0.1:" + secondPort
		c.HealthInterval = 200 * time.Millisecond
		c.MaxHeadLag = 1 << 40 // two dev chains are at different heights
	})
	ec, err := ethclient.DialContext(ctx, e.url("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	heads := make(chan *types.Header, 64)
	sub, err := ec.SubscribeNewHead(ctx, heads)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[common.Hash]bool{}
	var latest *types.Header
	next := func() {
		t.Helper()
		select {
		case h := <-heads:
			if seen[h.Hash()] {
				t.Fatalf("head %d %s delivered twice", h.Number, h.Hash())
			}
			seen[h.Hash()] = true
			latest = h
		case err := <-sub.Err():
			t.Fatalf("subscription ended: %v", err)
		case <-ctx.Done():
			t.Fatal("no head")
		}
	}
	next()
	second, _ := startGeth(t, ctx, bin, secondPort)
	waitFor(t, "the second node healthy", func() bool {
		c, err := ethclient.DialContext(ctx, "ws://"+second)
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = c.BlockNumber(ctx)
		return err == nil
	})
	time.Sleep(500 * time.Millisecond) // a health check sees it
	for len(heads) > 0 {               // the first node's heads, delivered meanwhile
		next()
	}
	stopFirst()
	waitFor(t, "the client moved", func() bool { return e.metric(t, "relaymeter_ws_edge_failovers_total", "moved") == 1 })
	var last *types.Header
	for range 3 {
		next()
	}
	for len(heads) > 0 {
		next()
	}
	// The last head is the second node's: the subscription follows it.
	sc, err := ethclient.DialContext(ctx, "ws://"+second)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	last = latest
	if h, err := sc.HeaderByHash(ctx, last.Hash()); err != nil || h.Number.Cmp(last.Number) != 0 {
		t.Fatalf("the last head %d %s is not the second node's: %v", last.Number, last.Hash(), err)
	}
}

// startGeth starts geth --dev with its WebSocket endpoint on port, and
// returns its address once it listens, and what kills it.
func startGeth(t *testing.T, ctx context.Context, bin, port string) (string, func()) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "--dev", "--dev.period", "1", "--datadir", t.TempDir(),
		"--ws", "--ws.addr", "127.0.0.1", "--ws.port", port, "--ws.api", "eth,net,web3",
		"--authrpc.port", freeTCPPort(t), "--port", "0", "--nodiscover", "--ipcdisable", "--verbosity", "1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	addr := "127.0.0.1:" + port
	waitFor(t, "geth to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, stop
}

func freeTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
