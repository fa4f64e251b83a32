package event

import "google.golang.org/protobuf/encoding/protowire"

// Field numbers of Event, for consumers that read a record value without
// decoding it whole.
const (
	FieldSchemaMajor protowire.Number = 1
	FieldStreamID    protowire.Number = 2
	FieldSeq         protowire.Number = 3
	FieldEdgeID      protowire.Number = 4
	FieldObservedAt  protowire.Number = 5
	FieldOpened      protowire.Number = 10
	FieldMessage     protowire.Number = 11
	FieldClosed      protowire.Number = 12
	FieldChain       protowire.Number = 15
)

// PeekStreamID returns the stream id of a record value without decoding the
// rest of it; ok is false when the value has no well-formed 16-byte stream
// id.
func PeekStreamID(value []byte) (id [16]byte, ok bool) {
	for len(value) > 0 {
		num, typ, n := protowire.ConsumeTag(value)
		if n < 0 {
			return id, false
		}
		value = value[n:]
		if num == FieldStreamID && typ == protowire.BytesType {
			b, n := protowire.ConsumeBytes(value)
			if n < 0 || len(b) != len(id) {
				return id, false
			}
			return [16]byte(b), true
		}
		n = protowire.ConsumeFieldValue(num, typ, value)
		if n < 0 {
			return id, false
		}
		value = value[n:]
	}
	return id, false
}
