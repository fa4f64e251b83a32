package policy

import (
	"encoding/json"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// MessageName is the name of the message policy, the default of a service.
const MessageName = "message"

// MessageVersion is the current version of the message policy.
const MessageVersion = 1

func init() {
	Register(Definition{Name: MessageName, Version: MessageVersion, New: newMessage})
}

// MessageParams are the message policy's parameters: it has none, so only
// an empty object (or none) is accepted.
type MessageParams struct{}

// Message is the message policy: one unit per Message event, both
// directions, every role.
type Message struct{}

func newMessage(raw json.RawMessage) (Policy, error) {
	var p MessageParams
	if err := DecodeParams(raw, &p); err != nil {
		return nil, &ParamsError{Policy: MessageName, Err: err}
	}
	return Message{}, nil
}

// Name returns "message".
func (Message) Name() string { return MessageName }

// Version returns MessageVersion.
func (Message) Version() int { return MessageVersion }

// Units returns 1 for every message; the policy carries no state.
func (Message) Units(_ *Stream, _ []byte, _ *event.Message) (uint64, []byte, error) {
	return 1, nil, nil
}

var _ Policy = Message{}
