package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"time"

	"github.com/relaymeter/relaymeter/chain"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
)

// chainFlags are the settlement's chain flags of meter and dev; the YAML
// file sets them under chain: (chainConfig).
type chainFlags struct {
	source, url, genesis       string
	blockTime                  time.Duration
	sessionBlocks, graceBlocks int64
}

func (c *chainFlags) register(fs *flag.FlagSet, blockTime time.Duration, sessionBlocks int64) {
	fs.StringVar(&c.source, "chain", "clock", "where session windows come from: clock (blocks every --block-time from --genesis) or cometbft (a CometBFT node at --chain-url)")
	fs.StringVar(&c.url, "chain-url", "", "the CometBFT node's RPC URL (with --chain cometbft)")
	fs.DurationVar(&c.blockTime, "block-time", blockTime, "the clock's block time (cometbft: the chain's nominal one, how long partitions may lag a window's end)")
	fs.Int64Var(&c.sessionBlocks, "session-blocks", sessionBlocks, "blocks per session window (num_blocks_per_session)")
	fs.Int64Var(&c.graceBlocks, "grace-blocks", meter.DefaultGraceBlocks, "blocks after a session's end before it settles (grace_period_end_offset_blocks)")
	fs.StringVar(&c.genesis, "genesis", chain.DefaultGenesis.Format(time.RFC3339), "the clock's genesis time (RFC 3339)")
}

// chainConfig is the YAML file's chain: mapping, each key a chain flag.
type chainConfig struct {
	Source        string `yaml:"source"`
	URL           string `yaml:"url"`
	BlockTime     string `yaml:"block_time"`
	SessionBlocks string `yaml:"session_blocks"`
	GraceBlocks   string `yaml:"grace_blocks"`
	Genesis       string `yaml:"genesis"`
}

// values returns the flags c sets, by name.
func (c chainConfig) values() map[string]string {
	out := map[string]string{}
	for name, v := range map[string]string{"chain": c.Source, "chain-url": c.URL, "block-time": c.BlockTime,
		"session-blocks": c.SessionBlocks, "grace-blocks": c.GraceBlocks, "genesis": c.Genesis} {
		if v != "" {
			out[name] = v
		}
	}
	return out
}

// build returns the chain and the settlement configuration the flags say.
func (c *chainFlags) build(ctx context.Context) (meter.Chain, ledger.SettlementConfig, error) {
	sc := ledger.SettlementConfig{Source: c.source, BlockTime: c.blockTime, SessionBlocks: c.sessionBlocks, GraceBlocks: c.graceBlocks}
	switch {
	case c.blockTime <= 0:
		return nil, sc, fmt.Errorf("--block-time must be positive")
	case c.sessionBlocks <= 0:
		return nil, sc, fmt.Errorf("--session-blocks must be positive")
	case c.graceBlocks < 0:
		return nil, sc, fmt.Errorf("--grace-blocks must not be negative")
	}
	switch c.source {
	case "clock":
		g, err := time.Parse(time.RFC3339Nano, c.genesis)
		if err != nil {
			return nil, sc, fmt.Errorf("--genesis: %w", err)
		}
		sc.Genesis = sql.Null[time.Time]{V: g.UTC(), Valid: true}
		return &chain.Clock{Genesis: g.UTC(), BlockTime: c.blockTime}, sc, nil
	case "cometbft":
		if c.url == "" {
			return nil, sc, fmt.Errorf("--chain cometbft needs --chain-url")
		}
		cb := &chain.CometBFT{URL: c.url}
		net, err := cb.Network(ctx)
		if err != nil {
			return nil, sc, err
		}
		sc.URL, sc.ChainID = c.url, net
		return cb, sc, nil
	}
	return nil, sc, fmt.Errorf("--chain %q: clock or cometbft", c.source)
}
