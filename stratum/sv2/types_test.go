package sv2

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"testing"
)

// allocatedBytes returns the bytes allocated by the process so far.
func allocatedBytes() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

func TestDecoderScalars(t *testing.T) {
	in := []byte{
		0x03,       // BOOL with a padding bit set: true
		0x02,       // BOOL with only a padding bit: false
		0xab,       // U8
		0x34, 0x12, // U16
		0x56, 0x34, 0x12, // U24
		0x78, 0x56, 0x34, 0x12, // U32
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // U64
		0x00, 0x00, 0x80, 0x3f, // F32 1.0
	}
	d := NewDecoder(in)
	if !d.Bool() || d.Bool() || d.U8() != 0xab || d.U16() != 0x1234 || d.U24() != 0x123456 || d.U32() != 0x12345678 ||
		d.U64() != 0x0102030405060708 || d.F32() != 1.0 {
		t.Fatal("scalar values wrong")
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
	e := NewEncoder(nil)
	e.Bool(true)
	e.Bool(false)
	e.U8(0xab)
	e.U16(0x1234)
	e.U24(0x123456)
	e.U32(0x12345678)
	e.U64(0x0102030405060708)
	e.F32(1.0)
	out, err := e.Finish()
	want := append([]byte{1, 0}, in[2:]...)
	if err != nil || !bytes.Equal(out, want) {
		t.Fatalf("encoded %x, %v; want %x", out, err, want)
	}
}

func TestDecoderIsSticky(t *testing.T) {
	d := NewDecoder([]byte{1, 2, 3})
	_ = d.U32()
	first := d.Err()
	var short *ShortBufferError
	if !errors.As(first, &short) || short.Need != 4 || short.Have != 3 || short.Offset != 0 {
		t.Fatalf("err = %v", first)
	}
	if d.U8() != 0 || d.Str0255() != "" || d.B064K(nil) != nil || d.Err() != first || d.Finish() != first {
		t.Fatal("reads after an error must return zero values and keep the first error")
	}
}

func TestLengthBounds(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		read func(*Decoder)
		typ  string
	}{
		{"B0_32 of 33", append([]byte{33}, make([]byte, 33)...), func(d *Decoder) { d.B032(nil) }, "B0_32"},
		{"OPTION of 2", []byte{2, 0, 0, 0, 0, 0, 0, 0, 0}, func(d *Decoder) { d.OptionU32(nil) }, "OPTION"},
	}
	for _, c := range cases {
		d := NewDecoder(c.in)
		c.read(&d)
		var le *LengthError
		if !errors.As(d.Err(), &le) || le.Type != c.typ || le.Offset != 0 {
			t.Errorf("%s: err = %v", c.name, d.Err())
		}
	}
	e := NewEncoder(nil)
	e.U24(MaxU24 + 1)
	if _, err := e.Finish(); err == nil {
		t.Error("U24 above range encoded")
	}
}

func TestForgedSequenceCountDoesNotAllocate(t *testing.T) {
	in := []byte{0xff, 0xff, 1, 2, 3} // SEQ0_64K claiming 65535 elements
	for name, read := range map[string]func(*Decoder){
		"U256":   func(d *Decoder) { d.Seq064KU256(nil) },
		"U32":    func(d *Decoder) { d.Seq064KU32(nil) },
		"U16":    func(d *Decoder) { d.Seq064KU16(nil) },
		"B0_16M": func(d *Decoder) { d.Seq064KB016M(nil) },
	} {
		before := allocatedBytes()
		d := NewDecoder(in)
		read(&d)
		if d.Err() == nil {
			t.Fatalf("%s: forged count accepted", name)
		}
		// A sequence of 65535 elements would need at least 128 KiB; the
		// slack absorbs runtime noise (the race detector allocates too).
		if n := allocatedBytes() - before; n > 64<<10 {
			t.Errorf("%s: %d bytes allocated for a rejected forged count", name, n)
		}
	}
}

func TestSeqB016MElementsAreIndependent(t *testing.T) {
	e := NewEncoder(nil)
	e.Seq064KB016M([]Bytes{{1, 2}, {3}})
	in, _ := e.Finish()
	d := NewDecoder(in)
	got := d.Seq064KB016M(nil)
	if d.Finish() != nil || len(got) != 2 || !bytes.Equal(got[0], []byte{1, 2}) || !bytes.Equal(got[1], []byte{3}) {
		t.Fatalf("got %x", got)
	}
	got[0] = append(got[0], 9) // must not overwrite got[1]
	if got[1][0] != 3 {
		t.Fatal("appending to one element overwrote the next")
	}
	// A lying element length inside the sequence is an error.
	d = NewDecoder([]byte{1, 0, 5, 0, 0, 1})
	d.Seq064KB016M(nil)
	var short *ShortBufferError
	if !errors.As(d.Err(), &short) {
		t.Fatalf("err = %v", d.Err())
	}
}

func TestF32BitsPreserved(t *testing.T) {
	nan := math.Float32frombits(0x7fc00001)
	e := NewEncoder(nil)
	e.F32(nan)
	b, _ := e.Finish()
	d := NewDecoder(b)
	if got := math.Float32bits(d.F32()); got != 0x7fc00001 {
		t.Fatalf("NaN payload lost: %#x", got)
	}
	for v, want := range map[F32]string{F32(float32(math.NaN())): `"NaN"`, F32(float32(math.Inf(-1))): `"-Inf"`, 1.5e12: `1.5e+12`} {
		if got, _ := v.MarshalJSON(); string(got) != want {
			t.Errorf("F32(%v) JSON = %s, want %s", v, got, want)
		}
	}
}

func TestTLVLittleEndian(t *testing.T) {
	e := NewEncoder(nil)
	e.TLV(TLV{ExtensionType: 0x0002, FieldType: 0x01, Value: Bytes("ab")})
	b, _ := e.Finish()
	want := []byte{0x02, 0x00, 0x01, 0x02, 0x00, 'a', 'b'}
	if !bytes.Equal(b, want) {
		t.Fatalf("TLV = %x, want %x", b, want)
	}
	d := NewDecoder(append(b, b...))
	got := d.TLVs(nil)
	if d.Finish() != nil || len(got) != 2 || got[1].ExtensionType != 2 || string(got[1].Value) != "ab" {
		t.Fatalf("TLVs = %+v, %v", got, d.Err())
	}
}
