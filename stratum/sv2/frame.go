package sv2

import (
	"errors"
	"fmt"
	"io"
)

// HeaderLen is the size of a frame header on the wire.
const HeaderLen = 6

// ChannelMsgBit is the mask of the channel_msg flag in extension_type.
const ChannelMsgBit uint16 = 0x8000

// DefaultMaxPayload is the payload limit a Reader or Writer applies when
// given none: 1 MiB, far below the 16 MiB a U24 length allows and above
// any message the reference implementation sends in practice.
const DefaultMaxPayload = 1 << 20

// Header is the 6-byte Sv2 frame header.
type Header struct {
	// ExtensionType is the raw U16, channel_msg bit included.
	ExtensionType uint16
	MsgType       uint8
	// MsgLength is the payload length (a U24), channel_id included.
	MsgLength uint32
}

// ChannelMsg reports whether the channel_msg bit is set, meaning the
// payload starts with a U32 channel_id.
func (h Header) ChannelMsg() bool { return h.ExtensionType&ChannelMsgBit != 0 }

// Extension returns the extension type without the channel_msg bit.
func (h Header) Extension() uint16 { return h.ExtensionType &^ ChannelMsgBit }

// Kind returns the registry key of the frame's message.
func (h Header) Kind() Kind { return Kind{Ext: h.Extension(), Type: h.MsgType} }

// AppendBinary appends the 6-byte wire form of h; a MsgLength above
// MaxU24 is an error.
func (h Header) AppendBinary(dst []byte) ([]byte, error) {
	if h.MsgLength > MaxU24 {
		return dst, fmt.Errorf("sv2: frame header: %w", &FrameTooLargeError{Length: int(h.MsgLength), Limit: MaxU24})
	}
	return append(dst, byte(h.ExtensionType), byte(h.ExtensionType>>8), h.MsgType,
		byte(h.MsgLength), byte(h.MsgLength>>8), byte(h.MsgLength>>16)), nil
}

// ParseHeader reads a header from the first HeaderLen bytes of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("sv2: frame header: %w", &ShortBufferError{Need: HeaderLen, Have: len(b)})
	}
	return Header{
		ExtensionType: uint16(b[0]) | uint16(b[1])<<8,
		MsgType:       b[2],
		MsgLength:     uint32(b[3]) | uint32(b[4])<<8 | uint32(b[5])<<16,
	}, nil
}

// SplitFrame parses one whole frame at the start of b and returns its
// header, its payload (aliasing b) and the bytes after it. A payload
// longer than maxPayload (DefaultMaxPayload when maxPayload <= 0) is a
// *FrameTooLargeError.
func SplitFrame(b []byte, maxPayload int) (h Header, payload, rest []byte, err error) {
	h, err = ParseHeader(b)
	if err != nil {
		return h, nil, b, err
	}
	limit := effectiveLimit(maxPayload)
	if int(h.MsgLength) > limit {
		return h, nil, b, fmt.Errorf("sv2: frame: %w", &FrameTooLargeError{Length: int(h.MsgLength), Limit: limit})
	}
	end := HeaderLen + int(h.MsgLength)
	if len(b) < end {
		return h, nil, b, fmt.Errorf("sv2: frame payload: %w",
			&ShortBufferError{Offset: HeaderLen, Need: int(h.MsgLength), Have: len(b) - HeaderLen})
	}
	return h, b[HeaderLen:end:end], b[end:], nil
}

func effectiveLimit(max int) int {
	if max <= 0 {
		return DefaultMaxPayload
	}
	if max > MaxU24 {
		return MaxU24
	}
	return max
}

// AppendFrame appends a frame with the given extension_type (channel_msg
// bit included), msg_type and payload to dst.
func AppendFrame(dst []byte, extensionType uint16, msgType uint8, payload []byte) ([]byte, error) {
	if len(payload) > MaxU24 {
		return dst, fmt.Errorf("sv2: frame: %w", &FrameTooLargeError{Length: len(payload), Limit: MaxU24})
	}
	dst, _ = Header{ExtensionType: extensionType, MsgType: msgType, MsgLength: uint32(len(payload))}.AppendBinary(dst)
	return append(dst, payload...), nil
}

// AppendMessage appends m as a whole frame to dst. The header's
// extension_type and channel_msg bit come from the registry (for a
// *RawMessage, from its own header).
func AppendMessage(dst []byte, m Message) ([]byte, error) {
	ext := m.Kind().Ext
	if raw, ok := m.(*RawMessage); ok {
		ext = raw.Header.ExtensionType
	} else if info, ok := Lookup(m.Kind()); ok && info.ChannelMsg {
		ext |= ChannelMsgBit
	}
	start := len(dst)
	out := append(dst, 0, 0, 0, 0, 0, 0)
	out, err := m.Encode(out)
	if err != nil {
		return dst, err
	}
	n := len(out) - start - HeaderLen
	if n > MaxU24 {
		return dst, fmt.Errorf("sv2: encoding %s: %w", m.Kind(), &FrameTooLargeError{Length: n, Limit: MaxU24})
	}
	// Fill in the 6 bytes reserved above, in place.
	_, _ = Header{ExtensionType: ext, MsgType: m.Kind().Type, MsgLength: uint32(n)}.AppendBinary(out[start:start])
	return out, nil
}

// Reader reads frames from an io.Reader. It checks each msg_length
// against its limit before allocating, and reuses one payload buffer that
// grows to the largest frame seen (never beyond the limit). A Reader is
// not safe for concurrent use.
type Reader struct {
	r     io.Reader
	limit int
	hdr   [HeaderLen]byte
	buf   []byte
	off   int64
}

// NewReader returns a Reader on r that rejects payloads longer than
// maxPayload bytes; maxPayload <= 0 means DefaultMaxPayload, and values
// above MaxU24 mean MaxU24.
func NewReader(r io.Reader, maxPayload int) *Reader {
	return &Reader{r: r, limit: effectiveLimit(maxPayload)}
}

// MaxPayload returns the payload limit in force.
func (r *Reader) MaxPayload() int { return r.limit }

// Offset returns the number of bytes consumed from the underlying reader,
// which is the offset of the next frame after a successful Next.
func (r *Reader) Offset() int64 { return r.off }

// Next reads the next frame. The returned payload is owned by the Reader
// and valid only until the next call to Next; copy it (or decode it into
// a message, which copies) to keep it. At a clean end of input between
// frames Next returns io.EOF; a frame cut short is io.ErrUnexpectedEOF,
// and an oversized one a *FrameTooLargeError, both wrapped with the
// frame's offset.
func (r *Reader) Next() (Header, []byte, error) {
	start := r.off
	n, err := io.ReadFull(r.r, r.hdr[:])
	r.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) && n == 0 {
			return Header{}, nil, io.EOF
		}
		return Header{}, nil, fmt.Errorf("sv2: frame header at offset %d: %w", start, err)
	}
	h, _ := ParseHeader(r.hdr[:])
	size := int(h.MsgLength)
	if size > r.limit {
		return h, nil, fmt.Errorf("sv2: frame at offset %d: %w", start, &FrameTooLargeError{Length: size, Limit: r.limit})
	}
	if cap(r.buf) < size {
		c := 2 * cap(r.buf)
		if c < size {
			c = size
		}
		if c > r.limit {
			c = r.limit
		}
		r.buf = make([]byte, c)
	}
	payload := r.buf[:size:size]
	n, err = io.ReadFull(r.r, payload)
	r.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, fmt.Errorf("sv2: frame payload at offset %d (%d of %d bytes): %w", start+HeaderLen, n, size, err)
	}
	return h, payload, nil
}

// Writer writes frames to an io.Writer, one Write call per frame, reusing
// one buffer. A Writer is not safe for concurrent use.
type Writer struct {
	w     io.Writer
	limit int
	buf   []byte
}

// NewWriter returns a Writer on w that refuses payloads longer than
// maxPayload bytes, with the same defaults as NewReader.
func NewWriter(w io.Writer, maxPayload int) *Writer {
	return &Writer{w: w, limit: effectiveLimit(maxPayload)}
}

// WriteMessage encodes m and writes it as one frame.
func (w *Writer) WriteMessage(m Message) error {
	b, err := AppendMessage(w.buf[:0], m)
	if err != nil {
		return err
	}
	return w.flush(b)
}

// WriteFrame writes one frame with the given extension_type (channel_msg
// bit included), msg_type and payload.
func (w *Writer) WriteFrame(extensionType uint16, msgType uint8, payload []byte) error {
	b, err := AppendFrame(w.buf[:0], extensionType, msgType, payload)
	if err != nil {
		return err
	}
	return w.flush(b)
}

func (w *Writer) flush(b []byte) error {
	w.buf = b
	if n := len(b) - HeaderLen; n > w.limit {
		return fmt.Errorf("sv2: writing frame: %w", &FrameTooLargeError{Length: n, Limit: w.limit})
	}
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("sv2: writing frame: %w", err)
	}
	return nil
}
