package sv2

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestHeaderLayout(t *testing.T) {
	h, err := ParseHeader([]byte{0x01, 0x80, 0x1a, 0x04, 0x03, 0x02})
	if err != nil {
		t.Fatal(err)
	}
	if h.ExtensionType != 0x8001 || h.MsgType != 0x1a || h.MsgLength != 0x020304 {
		t.Fatalf("header = %+v", h)
	}
	if !h.ChannelMsg() || h.Extension() != 1 || h.Kind() != (Kind{1, 0x1a}) {
		t.Fatalf("ChannelMsg %v Extension %#x", h.ChannelMsg(), h.Extension())
	}
	b, err := h.AppendBinary(nil)
	if err != nil || !bytes.Equal(b, []byte{0x01, 0x80, 0x1a, 0x04, 0x03, 0x02}) {
		t.Fatalf("AppendBinary = %x, %v", b, err)
	}
	if _, err := (Header{MsgLength: MaxU24 + 1}).AppendBinary(nil); err == nil {
		t.Fatal("AppendBinary accepted a length above U24")
	}
	var short *ShortBufferError
	if _, err := ParseHeader([]byte{1, 2, 3}); !errors.As(err, &short) {
		t.Fatalf("ParseHeader(3 bytes) err = %v", err)
	}
}

func TestAppendMessageSetsChannelBit(t *testing.T) {
	f, err := AppendMessage(nil, &SubmitSharesSuccess{ChannelID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if f[0] != 0x00 || f[1] != 0x80 || f[2] != MsgSubmitSharesSuccess || f[3] != 20 {
		t.Fatalf("channel message header = %x", f[:6])
	}
	f, _ = AppendMessage(nil, &SetGroupChannel{})
	if f[1] != 0x00 {
		t.Fatalf("SetGroupChannel must not set channel_msg: %x", f[:6])
	}
	f, _ = AppendMessage(nil, &RequestExtensions{})
	if f[0] != 0x01 || f[1] != 0x00 {
		t.Fatalf("RequestExtensions extension_type = %x, want 0x0001", f[:2])
	}
}

func TestReaderReadsFramesAndReusesBuffer(t *testing.T) {
	var stream []byte
	for _, m := range sampleMessages() {
		var err error
		if stream, err = AppendMessage(stream, m); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(bytes.NewReader(stream), 0)
	if r.MaxPayload() != DefaultMaxPayload {
		t.Fatalf("default limit = %d", r.MaxPayload())
	}
	for i, want := range sampleMessages() {
		h, payload, err := r.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if h.Kind() != want.Kind() {
			t.Fatalf("frame %d kind %v, want %v", i, h.Kind(), want.Kind())
		}
		wantPayload, _ := want.Encode(nil)
		if !bytes.Equal(payload, wantPayload) {
			t.Fatalf("frame %d payload %x, want %x", i, payload, wantPayload)
		}
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
	if r.Offset() != int64(len(stream)) {
		t.Fatalf("Offset = %d, want %d", r.Offset(), len(stream))
	}

	one, _ := AppendMessage(nil, &SubmitSharesStandard{ChannelID: 1})
	loop := &repeatReader{data: one}
	rr := NewReader(loop, 0)
	rr.Next() // sizes the buffer
	if allocs := testing.AllocsPerRun(100, func() { rr.Next() }); allocs != 0 {
		t.Fatalf("Reader.Next allocates %.1f times per frame, want 0", allocs)
	}
}

// repeatReader returns data over and over.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReaderRejectsLargeFrameBeforeAllocating(t *testing.T) {
	// A header announcing 16 MiB - 1, followed by only a few bytes.
	data := append([]byte{0, 0, 0x10, 0xff, 0xff, 0xff}, make([]byte, 100)...)
	cr := &countingReader{r: bytes.NewReader(data)}
	r := NewReader(cr, 4096)
	_, _, err := r.Next()
	var tooLarge *FrameTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Length != MaxU24 || tooLarge.Limit != 4096 {
		t.Fatalf("err = %v, want *FrameTooLargeError{%d, 4096}", err, MaxU24)
	}
	if cr.n != HeaderLen || cap(r.buf) != 0 {
		t.Fatalf("read %d bytes and allocated %d before rejecting", cr.n, cap(r.buf))
	}
	if !strings.Contains(err.Error(), "offset 0") {
		t.Fatalf("error %q does not name the offset", err)
	}
}

func TestReaderTruncatedInput(t *testing.T) {
	frame, _ := AppendMessage(nil, &SubmitSharesStandard{ChannelID: 1})
	for n := 1; n < len(frame); n++ {
		_, _, err := NewReader(bytes.NewReader(frame[:n]), 0).Next()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("frame cut to %d bytes: err = %v, want io.ErrUnexpectedEOF", n, err)
		}
	}
}

func TestReaderLimitClamp(t *testing.T) {
	if got := NewReader(nil, 1<<30).MaxPayload(); got != MaxU24 {
		t.Fatalf("limit above U24 = %d, want %d", got, MaxU24)
	}
	if got := NewReader(nil, -1).MaxPayload(); got != DefaultMaxPayload {
		t.Fatalf("negative limit = %d, want default", got)
	}
}

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 64)
	if err := w.WriteMessage(&SubmitSharesStandard{ChannelID: 9, SequenceNumber: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(0x4000, 0x01, []byte("raw")); err != nil {
		t.Fatal(err)
	}
	err := w.WriteMessage(&NewExtendedMiningJob{CoinbaseTxPrefix: make(Bytes, 100)})
	var tooLarge *FrameTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Limit != 64 {
		t.Fatalf("oversized WriteMessage err = %v", err)
	}
	r := NewReader(&buf, 0)
	h, p, err := r.Next()
	if err != nil || h.ExtensionType != 0x8000 || len(p) != 24 || p[0] != 9 {
		t.Fatalf("first frame %+v %x %v", h, p, err)
	}
	h, p, err = r.Next()
	if err != nil || h.ExtensionType != 0x4000 || string(p) != "raw" {
		t.Fatalf("second frame %+v %q %v", h, p, err)
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("oversized frame was written: %v", err)
	}
}

func TestSplitFrame(t *testing.T) {
	a, _ := AppendMessage(nil, &SetTarget{ChannelID: 1})
	b, _ := AppendMessage(nil, &CloseChannel{ChannelID: 2, ReasonCode: "bye"})
	h, p, rest, err := SplitFrame(append(a, b...), 0)
	if err != nil || h.MsgType != MsgSetTarget || len(p) != 36 || !bytes.Equal(rest, b) {
		t.Fatalf("SplitFrame = %+v, %d, %x, %v", h, len(p), rest, err)
	}
	var tooLarge *FrameTooLargeError
	if _, _, _, err := SplitFrame(b, 4); !errors.As(err, &tooLarge) {
		t.Fatalf("limit 4: err = %v", err)
	}
	var short *ShortBufferError
	if _, _, _, err := SplitFrame(b[:len(b)-1], 0); !errors.As(err, &short) {
		t.Fatalf("cut frame: err = %v", err)
	}
}
