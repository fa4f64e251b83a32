package chain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"golang.org/x/crypto/sha3"
)

func TestWindowOf(t *testing.T) {
	for _, c := range []struct{ h, n, s, e int64 }{
		{1, 4, 1, 4}, {4, 4, 1, 4}, {5, 4, 5, 8}, {8, 4, 5, 8}, {9, 4, 9, 12},
		{1, 1, 1, 1}, {7, 1, 7, 7}, {10, 10, 1, 10}, {11, 10, 11, 20},
	} {
		if w := WindowOf(c.h, c.n); w != (Window{c.s, c.e}) {
			t.Errorf("WindowOf(%d, %d) = %v, want [%d, %d]", c.h, c.n, w, c.s, c.e)
		}
	}
	if w := WindowOf(5, 4).Next(); w != (Window{9, 12}) {
		t.Errorf("Next = %v", w)
	}
}

// TestSessionID checks the id against the concatenation poktroll's
// session hydrator hashes (x/session/keeper/session_hydrator.go,
// GetSessionId: bytes.Join of block hash, service id, application
// address and the start height as 8 bytes little-endian, with "."),
// written out by hand here.
func TestSessionID(t *testing.T) {
	hash := bytes.Repeat([]byte{0xab}, 32)
	in := append(append([]byte{}, hash...), []byte(".anvil.pokt1app.")...)
	in = append(in, 5, 0, 0, 0, 0, 0, 0, 0)
	want := sha3.Sum256(in)
	if got := SessionID(hash, "anvil", "pokt1app", 5); got != hex.EncodeToString(want[:]) {
		t.Fatalf("SessionID = %s, want %x", got, want)
	}
	// A fixed vector (computed independently with Python's hashlib.sha3_256).
	if got := SessionID(hash, "anvil", "pokt1app", 5); got != sessionIDVector {
		t.Fatalf("SessionID = %s, want the vector %s", got, sessionIDVector)
	}
}

const sessionIDVector = "e60c37055e96418c9bd138a66a5141b2899bfb0d6a050577c1d97b09236cfa4a"

func TestClock(t *testing.T) {
	g := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := g.Add(12*time.Second + 500*time.Millisecond)
	c := &Clock{Genesis: g, BlockTime: 5 * time.Second, Now: func() time.Time { return now }}
	head, err := c.Head(context.Background())
	if err != nil || head.Height != 3 || !head.Time.Equal(g.Add(10*time.Second)) {
		t.Fatalf("Head = %+v, %v; want height 3 at genesis+10s", head, err)
	}
	b := make([]byte, 0, 40)
	b = append(b, "relaymeter/clock"...)
	b = binary.BigEndian.AppendUint64(b, uint64(g.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(5*time.Second))
	b = binary.BigEndian.AppendUint64(b, 3)
	if want := sha256.Sum256(b); !bytes.Equal(head.Hash, want[:]) {
		t.Fatalf("hash %x, want %x", head.Hash, want)
	}
	if h := c.HeightAt(g.Add(-time.Nanosecond)); h != 0 {
		t.Fatalf("HeightAt before genesis = %d", h)
	}
	if h := c.HeightAt(g.Add(5 * time.Second)); h != 2 {
		t.Fatalf("HeightAt(genesis+5s) = %d, want 2", h)
	}
}
