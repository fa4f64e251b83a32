package smst

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

const (
	// PathSize is the length in bytes of a path, sha256(key).
	PathSize = 32
	// DigestSize is the length in bytes of a node digest, of a side node in
	// a proof and of a root: hash ‖ sum ‖ count.
	DigestSize = 48
	// RootSize is the length in bytes of a root; it equals DigestSize.
	RootSize = DigestSize
	// MaxDepth is the number of levels below the root: one per path bit.
	MaxDepth = PathSize * 8

	hashSize    = 32
	leafPrefix  = 0x00
	innerPrefix = 0x01
	innerLen    = 1 + 2*DigestSize + 16
)

// digest is a node digest: hash ‖ sum ‖ count. The zero value is the empty
// subtree.
type digest [DigestSize]byte

type path = [PathSize]byte

func (d *digest) sum() uint64   { return binary.BigEndian.Uint64(d[hashSize:]) }
func (d *digest) count() uint64 { return binary.BigEndian.Uint64(d[hashSize+8:]) }

// bit returns bit i (0 = most significant) of p.
func bit(p *path, i int) int {
	return int(p[i>>3]>>(7-uint(i&7))) & 1
}

func bitOf(b []byte, i int) int {
	return int(b[i>>3]>>(7-uint(i&7))) & 1
}

func flipBit(b []byte, i int) {
	b[i>>3] ^= 1 << (7 - uint(i&7))
}

// commonPrefix returns the number of leading bits a and b share, in [0, 256].
func commonPrefix(a, b *path) int {
	for i := 0; i < PathSize; i += 8 {
		x := binary.BigEndian.Uint64(a[i:]) ^ binary.BigEndian.Uint64(b[i:])
		if x != 0 {
			n := 0
			for x&(1<<63) == 0 {
				x <<= 1
				n++
			}
			return i*8 + n
		}
	}
	return MaxDepth
}

// hasher computes node digests with reusable scratch space. It is not safe
// for concurrent use.
type hasher struct {
	h     hash.Hash
	sum   [hashSize]byte
	meta  [1 + PathSize]byte
	tail  [16]byte
	inner [innerLen]byte
}

func newHasher() *hasher { return &hasher{h: sha256.New()} }

// leaf returns the digest of a leaf at p storing value with weight.
func (h *hasher) leaf(p *path, value []byte, weight uint64) digest {
	binary.BigEndian.PutUint64(h.tail[:], weight)
	binary.BigEndian.PutUint64(h.tail[8:], 1)
	h.meta[0] = leafPrefix
	copy(h.meta[1:], p[:])
	h.h.Reset()
	h.h.Write(h.meta[:])
	h.h.Write(value)
	h.h.Write(h.tail[:])
	h.h.Sum(h.sum[:0])
	var d digest
	copy(d[:hashSize], h.sum[:])
	copy(d[hashSize:], h.tail[:])
	return d
}

// node returns the digest of an inner node with children l and r. Sums and
// counts add modulo 2^64, as in the reference; the tries in this package
// refuse updates that would overflow.
func (h *hasher) node(l, r *digest) digest {
	b := &h.inner
	b[0] = innerPrefix
	copy(b[1:], l[:])
	copy(b[1+DigestSize:], r[:])
	binary.BigEndian.PutUint64(b[1+2*DigestSize:], l.sum()+r.sum())
	binary.BigEndian.PutUint64(b[1+2*DigestSize+8:], l.count()+r.count())
	s := sha256.Sum256(b[:])
	var d digest
	copy(d[:hashSize], s[:])
	copy(d[hashSize:], b[1+2*DigestSize:])
	return d
}

// climb hashes d, the digest of the subtree at depth to on prefix p, up to
// depth from: every level in between has an empty other side.
func (h *hasher) climb(d digest, p *path, from, to int) digest {
	var zero digest
	for i := to - 1; i >= from; i-- {
		if bit(p, i) == 0 {
			d = h.node(&d, &zero)
		} else {
			d = h.node(&zero, &d)
		}
	}
	return d
}
