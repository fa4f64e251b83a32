// Package cometsim is a simulated CometBFT node for tests and dev: an HTTP
// server that produces a block every BlockTime and answers /status and
// /block?height=N with CometBFT's JSON shapes.
package cometsim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Node is a running simulated node.
type Node struct {
	srv       *httptest.Server
	network   string
	blockTime time.Duration
	stop      chan struct{}
	done      chan struct{}

	mu     sync.Mutex
	blocks []block // blocks[i] is height i+1
}

type block struct {
	time time.Time
	hash []byte
}

// Start starts a node of chain network producing a block every blockTime
// from now on; block 1 exists at once.
func Start(network string, blockTime time.Duration) *Node {
	n := &Node{network: network, blockTime: blockTime, stop: make(chan struct{}), done: make(chan struct{})}
	n.produce(time.Now())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", n.status)
	mux.HandleFunc("GET /block", n.block)
	n.srv = httptest.NewServer(mux)
	go n.run()
	return n
}

// URL is the node's RPC URL.
func (n *Node) URL() string { return n.srv.URL }

// Height returns the latest height.
func (n *Node) Height() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return int64(len(n.blocks))
}

// Close stops the node.
func (n *Node) Close() {
	close(n.stop)
	<-n.done
	n.srv.Close()
}

func (n *Node) run() {
	defer close(n.done)
	t := time.NewTicker(n.blockTime)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			n.produce(now)
		}
	}
}

func (n *Node) produce(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := sha256.New()
	h.Write([]byte(n.network))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(n.blocks)+1)))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano())))
	n.blocks = append(n.blocks, block{time: now.UTC(), hash: h.Sum(nil)})
}

func (n *Node) write(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": -1, "result": result})
}

func (n *Node) status(w http.ResponseWriter, _ *http.Request) {
	n.mu.Lock()
	h := len(n.blocks)
	b := n.blocks[h-1]
	n.mu.Unlock()
	n.write(w, map[string]any{
		"node_info": map[string]any{"network": n.network, "version": "0.38.0"},
		"sync_info": map[string]any{
			"latest_block_hash":   strings.ToUpper(hex.EncodeToString(b.hash)),
			"latest_block_height": strconv.Itoa(h),
			"latest_block_time":   b.time.Format(time.RFC3339Nano),
			"catching_up":         false,
		},
	})
}

func (n *Node) block(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	latest := len(n.blocks)
	h, err := strconv.Atoi(r.URL.Query().Get("height"))
	if err != nil || h < 1 || h > latest {
		n.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": -1, "error": map[string]any{
			"code": -32603, "message": "Internal error",
			"data": fmt.Sprintf("height %s must be less than or equal to the current blockchain height %d", r.URL.Query().Get("height"), latest)}})
		return
	}
	b := n.blocks[h-1]
	n.mu.Unlock()
	n.write(w, map[string]any{
		"block_id": map[string]any{"hash": strings.ToUpper(hex.EncodeToString(b.hash))},
		"block": map[string]any{"header": map[string]any{
			"chain_id": n.network, "height": strconv.Itoa(h), "time": b.time.Format(time.RFC3339Nano)}},
	})
}
