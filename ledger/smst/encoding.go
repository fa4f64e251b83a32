package smst

import (
	"encoding/binary"
	"fmt"
)

// Binary encodings. Both are canonical: a byte string decodes only if it is
// exactly what MarshalBinary produces for the decoded proof.
//
//	Proof:        0x01 ‖ sides ‖ flag (0 or 1) ‖ [leaf]
//	ClosestProof: 0x02 ‖ path(32) ‖ leaf ‖ sides ‖ flips
//	sides:  uvarint n (≤ 256) ‖ mask ‖ the non-empty side nodes, 48 bytes each
//	mask:   ⌈n/8⌉ bytes, bit i (most significant first) set when side node i
//	        is empty (48 zero bytes); unused bits are zero
//	flips:  ⌈n/8⌉ bytes, bit i set when depth i is a flipped bit
//	leaf:   path(32) ‖ uvarint len ‖ value ‖ weight(8, big-endian)
const (
	tagProof        = 0x01
	tagClosestProof = 0x02
)

// MarshalBinary encodes the proof compactly: an empty side node costs one
// bit. It fails with ErrInvalidProof if the proof's parts have wrong sizes.
func (proof *Proof) MarshalBinary() ([]byte, error) {
	if err := proof.check(); err != nil {
		return nil, fmt.Errorf("smst: marshal proof: %w", err)
	}
	buf := []byte{tagProof}
	buf = appendSides(buf, proof.SideNodes)
	if proof.Leaf == nil {
		return append(buf, 0), nil
	}
	buf = append(buf, 1)
	return appendLeaf(buf, proof.Leaf), nil
}

// UnmarshalBinary decodes a proof produced by MarshalBinary. Malformed input
// yields an error wrapping ErrInvalidProof and leaves proof unchanged.
func (proof *Proof) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	if d.byte() != tagProof {
		d.fail("not a proof")
	}
	var out Proof
	out.SideNodes = d.sides()
	switch d.byte() {
	case 0:
	case 1:
		l := d.leaf()
		out.Leaf = &l
	default:
		d.fail("bad leaf flag")
	}
	if err := d.end(); err != nil {
		return fmt.Errorf("smst: unmarshal proof: %w", err)
	}
	*proof = out
	return nil
}

// MarshalBinary encodes the closest proof compactly. It fails with
// ErrInvalidProof if the proof is inconsistent.
func (proof *ClosestProof) MarshalBinary() ([]byte, error) {
	if err := proof.check(); err != nil {
		return nil, fmt.Errorf("smst: marshal closest proof: %w", err)
	}
	buf := []byte{tagClosestProof}
	buf = append(buf, proof.Path...)
	buf = appendLeaf(buf, &proof.Leaf)
	buf = appendSides(buf, proof.SideNodes)
	flips := make([]byte, (proof.Depth+7)/8)
	for _, b := range proof.FlippedBits {
		flipBit(flips, b)
	}
	return append(buf, flips...), nil
}

// UnmarshalBinary decodes a closest proof produced by MarshalBinary.
// Malformed or inconsistent input yields an error wrapping ErrInvalidProof
// and leaves proof unchanged.
func (proof *ClosestProof) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	if d.byte() != tagClosestProof {
		d.fail("not a closest proof")
	}
	var out ClosestProof
	out.Path = d.bytes(PathSize)
	out.Leaf = d.leaf()
	out.SideNodes = d.sides()
	out.Depth = len(out.SideNodes)
	flips := d.mask(out.Depth)
	for i := 0; i < out.Depth && d.err == nil; i++ {
		if bitOf(flips, i) == 1 {
			out.FlippedBits = append(out.FlippedBits, i)
		}
	}
	if err := d.end(); err != nil {
		return fmt.Errorf("smst: unmarshal closest proof: %w", err)
	}
	if err := out.check(); err != nil {
		return fmt.Errorf("smst: unmarshal closest proof: %w", err)
	}
	*proof = out
	return nil
}

func appendSides(buf []byte, sides [][]byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(sides)))
	mask := make([]byte, (len(sides)+7)/8)
	for i, s := range sides {
		if isZero(s) {
			flipBit(mask, i)
		}
	}
	buf = append(buf, mask...)
	for _, s := range sides {
		if !isZero(s) {
			buf = append(buf, s...)
		}
	}
	return buf
}

func appendLeaf(buf []byte, l *Leaf) []byte {
	buf = append(buf, l.Path...)
	buf = binary.AppendUvarint(buf, uint64(len(l.Value)))
	buf = append(buf, l.Value...)
	return binary.BigEndian.AppendUint64(buf, l.Weight)
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// decoder reads from b; after the first failure every read returns zero
// values and err keeps the first failure.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %w", msg, ErrInvalidProof)
		d.b = nil
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.fail("truncated")
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]byte, n)
	copy(out, d.b)
	d.b = d.b[n:]
	return out
}

// uvarint reads a minimally encoded uvarint no larger than limit.
func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad length")
		return 0
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		d.fail("non-minimal length")
		return 0
	}
	if v > limit {
		d.fail("length out of range")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// mask reads a bit mask for n entries whose unused bits must be zero.
func (d *decoder) mask(n int) []byte {
	m := d.bytes((n + 7) / 8)
	if d.err == nil && n%8 != 0 && m[len(m)-1]&(0xff>>uint(n%8)) != 0 {
		d.fail("mask padding not zero")
	}
	return m
}

func (d *decoder) sides() [][]byte {
	n := int(d.uvarint(MaxDepth))
	mask := d.mask(n)
	if d.err != nil || n == 0 {
		return nil
	}
	sides := make([][]byte, n)
	for i := range sides {
		if bitOf(mask, i) == 1 {
			sides[i] = make([]byte, DigestSize)
			continue
		}
		sides[i] = d.bytes(DigestSize)
		if d.err == nil && isZero(sides[i]) {
			d.fail("empty side node not in mask")
		}
		if d.err != nil {
			return nil
		}
	}
	return sides
}

func (d *decoder) leaf() Leaf {
	var l Leaf
	l.Path = d.bytes(PathSize)
	l.Value = d.bytes(int(d.uvarint(uint64(len(d.b)))))
	w := d.bytes(8)
	if d.err == nil {
		l.Weight = binary.BigEndian.Uint64(w)
	}
	return l
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}
