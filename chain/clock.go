package chain

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// DefaultGenesis is the clock's default genesis time.
var DefaultGenesis = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Clock is a chain that produces a block every BlockTime from Genesis:
// height h (h >= 1) starts at Genesis + (h-1)·BlockTime, and its hash is
// sha256("relaymeter/clock" ‖ genesis unix ns ‖ block time ns ‖ h), each
// number an 8-byte big-endian integer.
type Clock struct {
	Genesis   time.Time
	BlockTime time.Duration
	// Now is the wall clock (nil: time.Now).
	Now func() time.Time
}

// Validate checks c.
func (c *Clock) Validate() error {
	if c.BlockTime <= 0 {
		return errors.New("chain: clock: block time must be positive")
	}
	if c.Genesis.IsZero() {
		return errors.New("chain: clock: no genesis")
	}
	return nil
}

// Head returns the latest block: the height whose start is at or before
// now. Before genesis there is none (ErrNoBlock).
func (c *Clock) Head(ctx context.Context) (Block, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	return c.Block(ctx, c.HeightAt(now()))
}

// HeightAt returns the height in progress at t; 0 before genesis.
func (c *Clock) HeightAt(t time.Time) int64 {
	if t.Before(c.Genesis) {
		return 0
	}
	return int64(t.Sub(c.Genesis)/c.BlockTime) + 1
}

// Block returns block height; it does not check that it is produced yet.
func (c *Clock) Block(_ context.Context, height int64) (Block, error) {
	if height < 1 {
		return Block{}, fmt.Errorf("%w: height %d", ErrNoBlock, height)
	}
	return Block{Height: height, Time: c.Genesis.Add(time.Duration(height-1) * c.BlockTime).UTC(), Hash: c.Hash(height)}, nil
}

// Hash returns the hash of block height.
func (c *Clock) Hash(height int64) []byte {
	b := make([]byte, 0, 16+24)
	b = append(b, "relaymeter/clock"...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Genesis.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.BlockTime.Nanoseconds()))
	b = binary.BigEndian.AppendUint64(b, uint64(height))
	sum := sha256.Sum256(b)
	return sum[:]
}
