package chain

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CometBFT is a chain read from a CometBFT node's RPC (as Pocket Network's
// chain exposes it): GET {URL}/status for the head and GET
// {URL}/block?height=N for a block.
type CometBFT struct {
	URL string
	// Client makes the requests (nil: a client with a 10 s timeout).
	Client *http.Client
}

// rpcResponse is CometBFT's JSON-RPC envelope.
type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    string `json:"data"`
	} `json:"error"`
}

type statusResult struct {
	NodeInfo struct {
		Network string `json:"network"`
	} `json:"node_info"`
	SyncInfo struct {
		LatestBlockHash   string    `json:"latest_block_hash"`
		LatestBlockHeight string    `json:"latest_block_height"`
		LatestBlockTime   time.Time `json:"latest_block_time"`
	} `json:"sync_info"`
}

type blockResult struct {
	BlockID struct {
		Hash string `json:"hash"`
	} `json:"block_id"`
	Block struct {
		Header struct {
			Height string    `json:"height"`
			Time   time.Time `json:"time"`
		} `json:"header"`
	} `json:"block"`
}

// Head returns the node's latest block.
func (c *CometBFT) Head(ctx context.Context) (Block, error) {
	var st statusResult
	if err := c.get(ctx, "/status", &st); err != nil {
		return Block{}, err
	}
	return block(st.SyncInfo.LatestBlockHeight, st.SyncInfo.LatestBlockTime, st.SyncInfo.LatestBlockHash)
}

// Network returns the node's chain id (node_info.network).
func (c *CometBFT) Network(ctx context.Context) (string, error) {
	var st statusResult
	if err := c.get(ctx, "/status", &st); err != nil {
		return "", err
	}
	return st.NodeInfo.Network, nil
}

// Block returns the block at height; ErrNoBlock when the node has none
// (not produced yet, or pruned).
func (c *CometBFT) Block(ctx context.Context, height int64) (Block, error) {
	var b blockResult
	if err := c.get(ctx, "/block?height="+strconv.FormatInt(height, 10), &b); err != nil {
		return Block{}, err
	}
	out, err := block(b.Block.Header.Height, b.Block.Header.Time, b.BlockID.Hash)
	if err == nil && out.Height != height {
		err = fmt.Errorf("chain: cometbft: asked for block %d, got %d", height, out.Height)
	}
	return out, err
}

func block(height string, t time.Time, hash string) (Block, error) {
	h, err := strconv.ParseInt(height, 10, 64)
	if err != nil || h < 1 {
		return Block{}, fmt.Errorf("chain: cometbft: block height %q", height)
	}
	raw, err := hex.DecodeString(hash)
	if err != nil || len(raw) == 0 {
		return Block{}, fmt.Errorf("chain: cometbft: block %d hash %q", h, hash)
	}
	if t.IsZero() {
		return Block{}, fmt.Errorf("chain: cometbft: block %d without a time", h)
	}
	return Block{Height: h, Time: t.UTC(), Hash: raw}, nil
}

// get reads the result of GET path into v.
func (c *CometBFT) get(ctx context.Context, path string, v any) error {
	client := c.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.URL, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("chain: cometbft: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("chain: cometbft: %w", err)
	}
	defer resp.Body.Close()
	var r rpcResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("chain: cometbft: GET %s: %s: %w", path, resp.Status, err)
	}
	if r.Error != nil {
		if strings.Contains(r.Error.Data, "height") {
			return fmt.Errorf("%w: %s", ErrNoBlock, r.Error.Data)
		}
		return fmt.Errorf("chain: cometbft: GET %s: %s %s", path, r.Error.Message, r.Error.Data)
	}
	if len(r.Result) == 0 {
		return errors.New("chain: cometbft: GET " + path + ": no result")
	}
	if err := json.Unmarshal(r.Result, v); err != nil {
		return fmt.Errorf("chain: cometbft: GET %s: %w", path, err)
	}
	return nil
}
