// Package chain gives the meter its session windows: the heights, times and
// hashes of a chain's blocks, from a deterministic clock or a CometBFT node,
// and the window arithmetic and session ids of Pocket Network's sessions.
//
// A session window is NumBlocksPerSession consecutive heights. As in
// poktroll, heights start at 1 and the window of height h starts at
// s = h - ((h-1) mod N) and ends at s + N - 1. A window's time range is
// [time(s), time(end+1)): it closes when the block after it is produced.
package chain

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/sha3"
)

// Block is a block of the chain as the meter needs it.
type Block struct {
	Height int64
	Time   time.Time
	Hash   []byte
}

// ErrNoBlock reports a height the chain has not produced (yet).
var ErrNoBlock = errors.New("chain: no such block")

// Window is a session window: heights Start to End inclusive.
type Window struct {
	Start, End int64
}

// WindowOf returns the window of height h (h >= 1) for sessions of n
// blocks.
func WindowOf(h, n int64) Window {
	s := h - (h-1)%n
	return Window{Start: s, End: s + n - 1}
}

// Next returns the window after w.
func (w Window) Next() Window {
	n := w.End - w.Start + 1
	return Window{Start: w.Start + n, End: w.End + n}
}

// String formats w as [start, end].
func (w Window) String() string { return fmt.Sprintf("[%d, %d]", w.Start, w.End) }

// SessionID returns Pocket Network's session id of (application, service)
// in the window starting at height start whose first block has the given
// hash: hex(SHA3-256(hash ‖ "." ‖ service ‖ "." ‖ application ‖ "." ‖
// start as 8-byte little-endian)), as poktroll's session hydrator computes
// it.
func SessionID(startHash []byte, service, application string, start int64) string {
	var h [8]byte
	binary.LittleEndian.PutUint64(h[:], uint64(start))
	b := bytes.Join([][]byte{startHash, []byte(service), []byte(application), h[:]}, []byte("."))
	sum := sha3.Sum256(b)
	return hex.EncodeToString(sum[:])
}
