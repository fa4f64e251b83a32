package beam

import (
	"errors"
	"fmt"
)

// Kind says why a line could not be decoded, in the terms of the node's
// reaction to it.
type Kind uint8

// Kinds of decoding failure.
const (
	// KindCorrupted: not JSON, invalid UTF-8, not an object, or an id,
	// method or required field that is missing or has the wrong JSON type.
	// The node disconnects the peer without a result.
	KindCorrupted Kind = iota + 1
	// KindEmptyID: the id is empty or absent. The node disconnects the
	// peer without a result.
	KindEmptyID
	// KindUnknownMethod: the method is absent or not one of the protocol's.
	// The node disconnects the peer without a result.
	KindUnknownMethod
	// KindInvalidField: well-formed, but a field's value is out of range or
	// not hex of the right length. For a solution the node answers
	// CodeRejected; other messages with such fields are never sent by a
	// conforming node.
	KindInvalidField
)

// String returns a short name for the kind.
func (k Kind) String() string {
	switch k {
	case KindCorrupted:
		return "message corrupted"
	case KindEmptyID:
		return "empty id"
	case KindUnknownMethod:
		return "unknown method"
	case KindInvalidField:
		return "invalid field"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Sentinel errors matched by errors.Is against a *DecodeError of the same Kind.
var (
	ErrCorrupted     = errors.New("beam: message corrupted")
	ErrEmptyID       = errors.New("beam: empty id")
	ErrUnknownMethod = errors.New("beam: unknown method")
	ErrInvalidField  = errors.New("beam: invalid field")
)

// DecodeError reports a line that Decode, Classify or a message's Decode
// method rejected. Its text never contains field values, so it is safe to
// record even for a login line.
type DecodeError struct {
	// Kind classifies the failure.
	Kind Kind
	// Method is the message's method when known (at most 64 bytes of it
	// for an unknown method), else "".
	Method string
	// Field is the JSON key at fault, else "".
	Field string
	// Reason explains the failure in a few words.
	Reason string
	// Offset is the byte offset in the line the failure refers to, or -1.
	Offset int64
}

// Error describes the failure without quoting field values.
func (e *DecodeError) Error() string {
	s := "beam: " + e.Kind.String()
	if e.Method != "" {
		s += fmt.Sprintf(": method %q", e.Method)
	}
	if e.Field != "" {
		s += ": field " + e.Field
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Offset >= 0 {
		s += fmt.Sprintf(" (at byte %d)", e.Offset)
	}
	return s
}

// Is reports whether target is the sentinel error for e's Kind.
func (e *DecodeError) Is(target error) bool {
	switch target {
	case ErrCorrupted:
		return e.Kind == KindCorrupted
	case ErrEmptyID:
		return e.Kind == KindEmptyID
	case ErrUnknownMethod:
		return e.Kind == KindUnknownMethod
	case ErrInvalidField:
		return e.Kind == KindInvalidField
	}
	return false
}

// Code returns the result code the node associates with the failure:
// CodeMessageCorrupted, CodeEmptyID, CodeUnknownMethod, or CodeRejected for
// an invalid field. The node itself sends a result only for the last.
func (e *DecodeError) Code() ResultCode {
	switch e.Kind {
	case KindEmptyID:
		return CodeEmptyID
	case KindUnknownMethod:
		return CodeUnknownMethod
	case KindInvalidField:
		return CodeRejected
	}
	return CodeMessageCorrupted
}

func corrupted(method, field, reason string, off int) *DecodeError {
	return &DecodeError{Kind: KindCorrupted, Method: method, Field: field, Reason: reason, Offset: int64(off)}
}

func invalidField(method, field, reason string) *DecodeError {
	return &DecodeError{Kind: KindInvalidField, Method: method, Field: field, Reason: reason, Offset: -1}
}

// LineTooLongError reports a line longer than the limit; the node drops a
// peer that sends one.
type LineTooLongError struct {
	// Line is the 1-based number of the offending line.
	Line int64
	// Offset is the stream offset of the line's first byte.
	Offset int64
	// Length is how many bytes of the line, LF included, were seen before
	// giving up; always more than Limit.
	Length int
	// Limit is the maximum line size, LF included.
	Limit int
}

// Error describes the line, its position and the limit.
func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("beam: line %d at offset %d: %d bytes or more, over the %d-byte limit (LF included)",
		e.Line, e.Offset, e.Length, e.Limit)
}
