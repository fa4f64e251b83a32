package sv2

import (
	"encoding/binary"
	"math"
)

// Bounds of the length-prefixed Sv2 data types.
const (
	MaxU24     = 1<<24 - 1 // largest U24, and largest msg_length
	MaxStr0255 = 255       // STR0_255
	MaxB032    = 32        // B0_32
	MaxB0255   = 255       // B0_255
	MaxB064K   = 65535     // B0_64K
	MaxB016M   = MaxU24    // B0_16M
	MaxSeq0255 = 255       // SEQ0_255[T]
	MaxSeq064K = 65535     // SEQ0_64K[T]
)

// U256 is an Sv2 U256: 32 bytes, least significant byte first, as on the
// wire.
type U256 [32]byte

// PubKey is an Sv2 PUBKEY: the 32-byte x coordinate of a secp256k1 key.
type PubKey [32]byte

// Signature is an Sv2 SIGNATURE: a 64-byte BIP-340 Schnorr signature.
type Signature [64]byte

// TLV is one Sv2 Type-Length-Value field appended to a message by an
// extension. Its length is len(Value).
type TLV struct {
	ExtensionType uint16 `json:"extension_type"` // extension that defines the field
	FieldType     uint8  `json:"field_type"`     // field within that extension
	Value         Bytes  `json:"value"`          // at most 65535 bytes
}

// Decoder reads Sv2 data types from a payload with a sticky error: after
// the first failure every read returns a zero value and the error is kept,
// so a caller reads all fields and checks Err or Finish once. A Decoder is
// a small value; the zero Decoder reads an empty payload.
type Decoder struct {
	buf []byte
	off int
	err error
}

// NewDecoder returns a Decoder reading buf from its start.
func NewDecoder(buf []byte) Decoder { return Decoder{buf: buf} }

// Err returns the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

// Offset returns the number of bytes consumed so far.
func (d *Decoder) Offset() int { return d.off }

// Len returns the number of bytes not yet consumed.
func (d *Decoder) Len() int { return len(d.buf) - d.off }

// Finish returns the first error met, or a *TrailingDataError when bytes
// remain unread.
func (d *Decoder) Finish() error {
	if d.err != nil {
		return d.err
	}
	if n := len(d.buf) - d.off; n != 0 {
		d.err = &TrailingDataError{Offset: d.off, N: n}
	}
	return d.err
}

// take consumes n bytes, or records a *ShortBufferError and returns nil.
func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.buf)-d.off {
		d.err = &ShortBufferError{Offset: d.off, Need: n, Have: len(d.buf) - d.off}
		return nil
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

// Bool reads a BOOL: only the least significant bit carries meaning.
func (d *Decoder) Bool() bool { return d.U8()&1 == 1 }

// U8 reads a U8.
func (d *Decoder) U8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

// U16 reads a little-endian U16.
func (d *Decoder) U16() uint16 {
	if b := d.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

// U24 reads a little-endian U24.
func (d *Decoder) U24() uint32 {
	if b := d.take(3); b != nil {
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	}
	return 0
}

// U32 reads a little-endian U32.
func (d *Decoder) U32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// U64 reads a little-endian U64.
func (d *Decoder) U64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// F32 reads an IEEE-754 binary32 stored little-endian.
func (d *Decoder) F32() float32 { return math.Float32frombits(d.U32()) }

// U256 reads a U256.
func (d *Decoder) U256() (v U256) {
	copy(v[:], d.take(32))
	return v
}

// PubKey reads a PUBKEY.
func (d *Decoder) PubKey() (v PubKey) {
	copy(v[:], d.take(32))
	return v
}

// Signature reads a SIGNATURE.
func (d *Decoder) Signature() (v Signature) {
	copy(v[:], d.take(64))
	return v
}

// length reads a prefix of width bytes and checks it against max.
func (d *Decoder) length(width int, typ string, max int) int {
	at := d.off
	var n int
	switch width {
	case 1:
		n = int(d.U8())
	case 2:
		n = int(d.U16())
	default:
		n = int(d.U24())
	}
	if d.err == nil && n > max {
		d.err = &LengthError{Type: typ, Offset: at, Length: n, Max: max}
		return 0
	}
	return n
}

// bytesInto reads a length-prefixed byte string and appends it to dst[:0].
func (d *Decoder) bytesInto(dst []byte, width int, typ string, max int) []byte {
	n := d.length(width, typ, max)
	b := d.take(n)
	if d.err != nil || n == 0 {
		return dst[:0]
	}
	return append(dst[:0], b...)
}

// Str0255 reads a STR0_255. The bytes are kept as they are: the
// specification does not require UTF-8.
func (d *Decoder) Str0255() string {
	n := d.length(1, "STR0_255", MaxStr0255)
	return string(d.take(n))
}

// B032 reads a B0_32, reusing dst's storage.
func (d *Decoder) B032(dst []byte) []byte { return d.bytesInto(dst, 1, "B0_32", MaxB032) }

// B0255 reads a B0_255, reusing dst's storage.
func (d *Decoder) B0255(dst []byte) []byte { return d.bytesInto(dst, 1, "B0_255", MaxB0255) }

// B064K reads a B0_64K, reusing dst's storage.
func (d *Decoder) B064K(dst []byte) []byte { return d.bytesInto(dst, 2, "B0_64K", MaxB064K) }

// B016M reads a B0_16M, reusing dst's storage.
func (d *Decoder) B016M(dst []byte) []byte { return d.bytesInto(dst, 3, "B0_16M", MaxB016M) }

// seqCount reads a sequence count prefix and checks that count elements
// of at least minSize bytes each can fit in what remains, so that a
// forged count never causes a large allocation.
func (d *Decoder) seqCount(width int, typ string, max, minSize int) int {
	at := d.off
	n := d.length(width, typ, max)
	if d.err == nil && n*minSize > len(d.buf)-d.off {
		d.err = &ShortBufferError{Offset: at, Need: width + n*minSize, Have: len(d.buf) - at}
		return 0
	}
	return n
}

// Seq0255U256 reads a SEQ0_255[U256], reusing dst's storage.
func (d *Decoder) Seq0255U256(dst []U256) []U256 {
	n := d.seqCount(1, "SEQ0_255", MaxSeq0255, 32)
	return readU256s(d, dst, n)
}

// Seq064KU256 reads a SEQ0_64K[U256], reusing dst's storage.
func (d *Decoder) Seq064KU256(dst []U256) []U256 {
	n := d.seqCount(2, "SEQ0_64K", MaxSeq064K, 32)
	return readU256s(d, dst, n)
}

func readU256s(d *Decoder, dst []U256, n int) []U256 {
	dst = dst[:0]
	if d.err != nil || n == 0 {
		return dst
	}
	dst = grow(dst, n)
	for i := 0; i < n; i++ {
		dst = append(dst, d.U256())
	}
	return dst
}

// Seq064KU16 reads a SEQ0_64K[U16], reusing dst's storage.
func (d *Decoder) Seq064KU16(dst []uint16) []uint16 {
	n := d.seqCount(2, "SEQ0_64K", MaxSeq064K, 2)
	dst = dst[:0]
	if d.err != nil || n == 0 {
		return dst
	}
	dst = grow(dst, n)
	for i := 0; i < n; i++ {
		dst = append(dst, d.U16())
	}
	return dst
}

// Seq064KU32 reads a SEQ0_64K[U32], reusing dst's storage.
func (d *Decoder) Seq064KU32(dst []uint32) []uint32 {
	n := d.seqCount(2, "SEQ0_64K", MaxSeq064K, 4)
	dst = dst[:0]
	if d.err != nil || n == 0 {
		return dst
	}
	dst = grow(dst, n)
	for i := 0; i < n; i++ {
		dst = append(dst, d.U32())
	}
	return dst
}

// Seq064KB016M reads a SEQ0_64K[B0_16M]. The elements share one new
// buffer no larger than the payload.
func (d *Decoder) Seq064KB016M(dst []Bytes) []Bytes {
	n := d.seqCount(2, "SEQ0_64K", MaxSeq064K, 3)
	dst = dst[:0]
	if d.err != nil || n == 0 {
		return dst
	}
	// First pass: validate and size, so one allocation holds all elements.
	scan := *d
	total := 0
	for i := 0; i < n; i++ {
		total += len(scan.take(scan.length(3, "B0_16M", MaxB016M)))
	}
	if scan.err != nil {
		d.err = scan.err
		return dst
	}
	store := make([]byte, 0, total)
	dst = grow(dst, n)
	for i := 0; i < n; i++ {
		b := d.take(d.length(3, "B0_16M", MaxB016M))
		start := len(store)
		store = append(store, b...)
		dst = append(dst, store[start:len(store):len(store)])
	}
	return dst
}

// OptionU32 reads an OPTION[U32] (a SEQ0_1[U32]); nil means absent. A
// present value is stored in *dst when dst is non-nil, so decoding into a
// reused message does not allocate.
func (d *Decoder) OptionU32(dst *uint32) *uint32 {
	at := d.off
	n := d.U8()
	if d.err != nil {
		return nil
	}
	switch n {
	case 0:
		return nil
	case 1:
		v := d.U32()
		if d.err != nil {
			return nil
		}
		if dst == nil {
			dst = new(uint32)
		}
		*dst = v
		return dst
	default:
		d.err = &LengthError{Type: "OPTION", Offset: at, Length: int(n), Max: 1}
		return nil
	}
}

// TLV reads one TLV field, reusing dst.Value's storage.
func (d *Decoder) TLV(dst TLV) TLV {
	dst.ExtensionType = d.U16()
	dst.FieldType = d.U8()
	dst.Value = d.bytesInto(dst.Value, 2, "TLV", MaxB064K)
	return dst
}

// TLVs reads TLV fields until the payload ends, reusing dst's storage.
func (d *Decoder) TLVs(dst []TLV) []TLV {
	dst = dst[:0]
	for d.err == nil && d.Len() > 0 {
		var t TLV
		if len(dst) < cap(dst) {
			t = dst[:len(dst)+1][len(dst)]
		}
		t = d.TLV(t)
		if d.err != nil {
			break
		}
		dst = append(dst, t)
	}
	return dst
}

// grow makes room for n more elements without growing past n.
func grow[T any](s []T, n int) []T {
	if cap(s)-len(s) >= n {
		return s
	}
	out := make([]T, len(s), len(s)+n)
	copy(out, s)
	return out
}

// Encoder appends Sv2 data types to a buffer with a sticky error: after
// the first failure further writes are ignored, and Finish reports it.
type Encoder struct {
	buf []byte
	err error
}

// NewEncoder returns an Encoder that appends to dst.
func NewEncoder(dst []byte) Encoder { return Encoder{buf: dst} }

// Finish returns the appended buffer and the first error met. On error
// the buffer holds the writes that preceded the failing one.
func (e *Encoder) Finish() ([]byte, error) { return e.buf, e.err }

// Bool appends a BOOL as 0 or 1.
func (e *Encoder) Bool(v bool) {
	if v {
		e.U8(1)
	} else {
		e.U8(0)
	}
}

// U8 appends a U8.
func (e *Encoder) U8(v uint8) {
	if e.err == nil {
		e.buf = append(e.buf, v)
	}
}

// U16 appends a little-endian U16.
func (e *Encoder) U16(v uint16) {
	if e.err == nil {
		e.buf = binary.LittleEndian.AppendUint16(e.buf, v)
	}
}

// U24 appends a little-endian U24; values above MaxU24 are an error.
func (e *Encoder) U24(v uint32) {
	if e.err != nil {
		return
	}
	if v > MaxU24 {
		e.err = &LengthError{Type: "U24", Offset: -1, Length: int(v), Max: MaxU24}
		return
	}
	e.buf = append(e.buf, byte(v), byte(v>>8), byte(v>>16))
}

// U32 appends a little-endian U32.
func (e *Encoder) U32(v uint32) {
	if e.err == nil {
		e.buf = binary.LittleEndian.AppendUint32(e.buf, v)
	}
}

// U64 appends a little-endian U64.
func (e *Encoder) U64(v uint64) {
	if e.err == nil {
		e.buf = binary.LittleEndian.AppendUint64(e.buf, v)
	}
}

// F32 appends an IEEE-754 binary32 little-endian, bits unchanged.
func (e *Encoder) F32(v float32) { e.U32(math.Float32bits(v)) }

// U256 appends a U256.
func (e *Encoder) U256(v U256) { e.raw(v[:]) }

// PubKey appends a PUBKEY.
func (e *Encoder) PubKey(v PubKey) { e.raw(v[:]) }

// Signature appends a SIGNATURE.
func (e *Encoder) Signature(v Signature) { e.raw(v[:]) }

func (e *Encoder) raw(b []byte) {
	if e.err == nil {
		e.buf = append(e.buf, b...)
	}
}

// prefixed appends a length prefix of width bytes and b, or records a
// *LengthError when len(b) exceeds max.
func (e *Encoder) prefixed(b []byte, width int, typ string, max int) {
	if e.err != nil {
		return
	}
	if len(b) > max {
		e.err = &LengthError{Type: typ, Offset: -1, Length: len(b), Max: max}
		return
	}
	e.count(len(b), width)
	e.raw(b)
}

func (e *Encoder) count(n, width int) {
	switch width {
	case 1:
		e.U8(uint8(n))
	case 2:
		e.U16(uint16(n))
	default:
		e.U24(uint32(n))
	}
}

// seqCount appends a sequence count, or records a *LengthError.
func (e *Encoder) seqCount(n, width int, typ string, max int) bool {
	if e.err != nil {
		return false
	}
	if n > max {
		e.err = &LengthError{Type: typ, Offset: -1, Length: n, Max: max}
		return false
	}
	e.count(n, width)
	return true
}

// Str0255 appends a STR0_255.
func (e *Encoder) Str0255(s string) {
	if e.err != nil {
		return
	}
	if len(s) > MaxStr0255 {
		e.err = &LengthError{Type: "STR0_255", Offset: -1, Length: len(s), Max: MaxStr0255}
		return
	}
	e.buf = append(append(e.buf, byte(len(s))), s...)
}

// B032 appends a B0_32.
func (e *Encoder) B032(b []byte) { e.prefixed(b, 1, "B0_32", MaxB032) }

// B0255 appends a B0_255.
func (e *Encoder) B0255(b []byte) { e.prefixed(b, 1, "B0_255", MaxB0255) }

// B064K appends a B0_64K.
func (e *Encoder) B064K(b []byte) { e.prefixed(b, 2, "B0_64K", MaxB064K) }

// B016M appends a B0_16M.
func (e *Encoder) B016M(b []byte) { e.prefixed(b, 3, "B0_16M", MaxB016M) }

// Seq0255U256 appends a SEQ0_255[U256].
func (e *Encoder) Seq0255U256(s []U256) {
	if e.seqCount(len(s), 1, "SEQ0_255", MaxSeq0255) {
		for i := range s {
			e.U256(s[i])
		}
	}
}

// Seq064KU256 appends a SEQ0_64K[U256].
func (e *Encoder) Seq064KU256(s []U256) {
	if e.seqCount(len(s), 2, "SEQ0_64K", MaxSeq064K) {
		for i := range s {
			e.U256(s[i])
		}
	}
}

// Seq064KU16 appends a SEQ0_64K[U16].
func (e *Encoder) Seq064KU16(s []uint16) {
	if e.seqCount(len(s), 2, "SEQ0_64K", MaxSeq064K) {
		for _, v := range s {
			e.U16(v)
		}
	}
}

// Seq064KU32 appends a SEQ0_64K[U32].
func (e *Encoder) Seq064KU32(s []uint32) {
	if e.seqCount(len(s), 2, "SEQ0_64K", MaxSeq064K) {
		for _, v := range s {
			e.U32(v)
		}
	}
}

// Seq064KB016M appends a SEQ0_64K[B0_16M].
func (e *Encoder) Seq064KB016M(s []Bytes) {
	if e.seqCount(len(s), 2, "SEQ0_64K", MaxSeq064K) {
		for _, b := range s {
			e.B016M(b)
		}
	}
}

// OptionU32 appends an OPTION[U32]; nil is the empty option.
func (e *Encoder) OptionU32(v *uint32) {
	if v == nil {
		e.U8(0)
		return
	}
	e.U8(1)
	e.U32(*v)
}

// TLV appends one TLV field.
func (e *Encoder) TLV(t TLV) {
	e.U16(t.ExtensionType)
	e.U8(t.FieldType)
	e.prefixed(t.Value, 2, "TLV", MaxB064K)
}

// TLVs appends TLV fields in order.
func (e *Encoder) TLVs(ts []TLV) {
	for i := range ts {
		e.TLV(ts[i])
	}
}
