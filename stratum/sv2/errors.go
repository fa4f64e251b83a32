package sv2

// The typed errors below carry no "sv2:" prefix: the package wraps them
// with context (and the prefix) wherever it returns them.

import "fmt"

// FrameTooLargeError reports a frame whose msg_length exceeds the limit a
// Reader or Writer was configured with. The reader returns it before
// allocating anything for the payload.
type FrameTooLargeError struct {
	Length int // msg_length announced (or requested) for the payload
	Limit  int // configured maximum payload length
}

// Error describes the announced length and the limit.
func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("frame payload of %d bytes exceeds limit of %d", e.Length, e.Limit)
}

// ShortBufferError reports that a value ran past the end of its input.
type ShortBufferError struct {
	Offset int // offset in the payload where the value started
	Need   int // bytes the value needs
	Have   int // bytes left at Offset
}

// Error describes where the input ran out.
func (e *ShortBufferError) Error() string {
	return fmt.Sprintf("truncated at offset %d: need %d bytes, have %d", e.Offset, e.Need, e.Have)
}

// LengthError reports a length prefix or a value length outside the range
// its data type allows, such as a B0_32 of 33 bytes or an OPTION with two
// elements.
type LengthError struct {
	Type   string // Sv2 data type, e.g. "B0_32"
	Offset int    // offset of the length prefix when decoding, -1 when encoding
	Length int    // offending length
	Max    int    // largest length the type allows
}

// Error describes the type, its length and its maximum.
func (e *LengthError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("%s of length %d exceeds maximum %d", e.Type, e.Length, e.Max)
	}
	return fmt.Sprintf("%s at offset %d has length %d, maximum %d", e.Type, e.Offset, e.Length, e.Max)
}

// TrailingDataError reports bytes left in a payload after its last field.
type TrailingDataError struct {
	Offset int // offset of the first unread byte
	N      int // number of unread bytes
}

// Error describes where the unread bytes start.
func (e *TrailingDataError) Error() string {
	return fmt.Sprintf("%d trailing bytes at offset %d", e.N, e.Offset)
}
