package sv2

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
)

// Kind identifies a message type: the extension type without the
// channel_msg bit, and the msg_type.
type Kind struct {
	Ext  uint16
	Type uint8
}

// String formats k as "ext=0x0000,type=0x1a".
func (k Kind) String() string { return fmt.Sprintf("ext=0x%04x,type=0x%02x", k.Ext, k.Type) }

// Message is a typed Sv2 message payload.
type Message interface {
	// Kind returns the message's registry key.
	Kind() Kind
	// Encode appends the payload (without frame header) to dst.
	Encode(dst []byte) ([]byte, error)
	// Decode replaces the message's fields with those read from payload,
	// which must be consumed exactly. The message keeps no reference to
	// payload.
	Decode(payload []byte) error
}

// RawMessage is a frame whose type the registry does not know, kept as is
// so that it can be forwarded unchanged.
type RawMessage struct {
	Header  Header // as read; MsgLength is recomputed on encode
	Payload Bytes
}

// Kind returns the frame's registry key.
func (m *RawMessage) Kind() Kind { return m.Header.Kind() }

// Encode appends the raw payload to dst.
func (m *RawMessage) Encode(dst []byte) ([]byte, error) { return append(dst, m.Payload...), nil }

// Decode copies payload; it never fails.
func (m *RawMessage) Decode(payload []byte) error {
	m.Payload = append(m.Payload[:0], payload...)
	return nil
}

// ParseMessage decodes a frame's payload into a new typed message, or
// into a *RawMessage when the registry does not know the frame's
// (extension_type, msg_type). The channel_msg bit is ignored when looking
// up the type, as the specification requires.
func ParseMessage(h Header, payload []byte) (Message, error) {
	info, ok := Lookup(h.Kind())
	if !ok {
		m := &RawMessage{Header: h}
		_ = m.Decode(payload)
		return m, nil
	}
	m := info.New()
	if err := m.Decode(payload); err != nil {
		return nil, err
	}
	return m, nil
}

// Bytes is a byte string field (B0_32, B0_255, B0_64K, B0_16M, TLV
// value). It marshals to text as lower-case hex.
type Bytes []byte

// MarshalText returns b as lower-case hex.
func (b Bytes) MarshalText() ([]byte, error) { return hexText(b), nil }

// MarshalText returns v's 32 wire bytes as lower-case hex, in wire order.
func (v U256) MarshalText() ([]byte, error) { return hexText(v[:]), nil }

// MarshalText returns the key as lower-case hex.
func (v PubKey) MarshalText() ([]byte, error) { return hexText(v[:]), nil }

// MarshalText returns the signature as lower-case hex.
func (v Signature) MarshalText() ([]byte, error) { return hexText(v[:]), nil }

func hexText(b []byte) []byte { return hex.AppendEncode(make([]byte, 0, 2*len(b)), b) }

// F32 is an Sv2 F32 field. It marshals to JSON as a number, or as the
// string "NaN", "+Inf" or "-Inf" for values JSON cannot hold.
type F32 float32

// MarshalJSON encodes f as a JSON number when it is finite.
func (f F32) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 32), nil
}

// encodeDone finishes an Encode: on error it returns dst unchanged and
// the error wrapped with the message name.
func encodeDone(e *Encoder, dst []byte, name string) ([]byte, error) {
	if e.err != nil {
		return dst, fmt.Errorf("sv2: encoding %s: %w", name, e.err)
	}
	return e.buf, nil
}

// decodeDone finishes a Decode: it requires the payload to be consumed
// exactly and wraps any error with the message name.
func decodeDone(d *Decoder, name string) error {
	if err := d.Finish(); err != nil {
		return fmt.Errorf("sv2: decoding %s: %w", name, err)
	}
	return nil
}
