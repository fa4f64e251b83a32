package event

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// SchemaMajor is the major version of the contract this package implements.
const SchemaMajor = 1

// ChainSize is the size of a chain hash.
const ChainSize = sha256.Size

// The chain field as producers append it: its tag (FieldChain, bytes), the
// length 32, then the hash.
const (
	chainTag        = byte(FieldChain<<3 | protowire.Number(protowire.BytesType))
	chainTrailerLen = 2 + ChainSize
)

// ErrUnknownMajor reports an event of a schema major version this build does
// not know; a consumer must stop rather than guess.
var ErrUnknownMajor = errors.New("event: unknown schema major version")

// ErrNoMajor reports a record value without a schema major version: not
// an event of any version.
var ErrNoMajor = errors.New("event: no schema major version")

// ErrNoChain reports a record value whose chain field is missing or not
// appended last, so its chain cannot be verified.
var ErrNoChain = errors.New("event: chain field missing or not last")

// Seal appends to dst the record value of ev: ev encoded without its chain
// field, then the chain field sha256(prev ‖ that encoding). It sets
// ev.SchemaMajor and ev.Chain, and returns the value and the new chain.
func Seal(dst []byte, ev *Event, prev [ChainSize]byte) ([]byte, [ChainSize]byte, error) {
	ev.SchemaMajor = SchemaMajor
	ev.Chain = nil
	start := len(dst)
	dst, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(dst, ev)
	if err != nil {
		return dst[:start], [ChainSize]byte{}, fmt.Errorf("event: marshal: %w", err)
	}
	chain := next(prev, dst[start:])
	dst = protowire.AppendTag(dst, FieldChain, protowire.BytesType)
	dst = protowire.AppendBytes(dst, chain[:])
	ev.Chain = dst[len(dst)-ChainSize:]
	return dst, chain, nil
}

// Decode parses a record value into ev and checks its schema major version
// and that its chain field was appended last. It does not check the chain
// against the stream's previous event: Chained does.
func Decode(value []byte, ev *Event) error {
	if err := proto.Unmarshal(value, ev); err != nil {
		return fmt.Errorf("event: unmarshal: %w", err)
	}
	switch ev.SchemaMajor {
	case SchemaMajor:
	case 0:
		// Every version sets its major, so a value without one (empty, a
		// tombstone, bytes that happen to parse) is malformed, not news.
		return ErrNoMajor
	default:
		return fmt.Errorf("%w: %d (this build knows %d)", ErrUnknownMajor, ev.SchemaMajor, SchemaMajor)
	}
	if len(value) < chainTrailerLen || value[len(value)-chainTrailerLen] != chainTag ||
		value[len(value)-chainTrailerLen+1] != ChainSize || !bytes.Equal(ev.Chain, value[len(value)-ChainSize:]) {
		return ErrNoChain
	}
	return nil
}

// Chained reports whether value, a record value that Decode accepted, carries
// the chain that follows prev.
func Chained(value []byte, prev [ChainSize]byte) bool {
	if len(value) < chainTrailerLen {
		return false
	}
	want := next(prev, value[:len(value)-chainTrailerLen])
	return bytes.Equal(want[:], value[len(value)-ChainSize:])
}

func next(prev [ChainSize]byte, body []byte) [ChainSize]byte {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(body)
	var out [ChainSize]byte
	h.Sum(out[:0])
	return out
}
