package policy

import (
	"encoding/json"
	"fmt"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// BytesName is the name of the bytes policy.
const BytesName = "bytes"

// BytesVersion is the current version of the bytes policy.
const BytesVersion = 1

// BytesDefaultBlock is the block size of the bytes policy when its
// parameters name none: one unit per started KiB.
const BytesDefaultBlock = 1024

func init() {
	Register(Definition{Name: BytesName, Version: BytesVersion, New: newBytes})
}

// Direction selects the messages a policy prices by the way they travelled.
type Direction string

const (
	// DirectionBoth selects every message.
	DirectionBoth Direction = "both"
	// DirectionRequest selects CLIENT_TO_UPSTREAM messages, whatever their
	// JSON-RPC role.
	DirectionRequest Direction = "request"
	// DirectionResponse selects UPSTREAM_TO_CLIENT messages.
	DirectionResponse Direction = "response"
)

// Validate refuses a direction other than both, request and response
// ("" means both).
func (d Direction) Validate() error {
	switch d {
	case "", DirectionBoth, DirectionRequest, DirectionResponse:
		return nil
	}
	return fmt.Errorf("direction %q: want %q, %q or %q", string(d), DirectionBoth, DirectionRequest, DirectionResponse)
}

// Selects reports whether a message that travelled dir is priced.
func (d Direction) Selects(dir event.Direction) bool {
	switch d {
	case DirectionRequest:
		return dir == event.Direction_CLIENT_TO_UPSTREAM
	case DirectionResponse:
		return dir == event.Direction_UPSTREAM_TO_CLIENT
	}
	return true
}

// BytesParams are the bytes policy's parameters.
type BytesParams struct {
	// Block is the size in bytes of one unit; every started block counts
	// (101 bytes in blocks of 100 are 2 units, 0 bytes 0 units). At least
	// 1; BytesDefaultBlock when absent.
	Block uint64 `json:"block"`
	// Count is what is measured: "wire" (WireSize, framing and encryption
	// included; the default) or "payload" (PayloadSize, the whole payload
	// even when its capture was truncated).
	Count string `json:"count"`
	// Direction is the messages priced: "both" (the default), "request"
	// (client to upstream) or "response" (upstream to client); the others
	// are 0 units.
	Direction Direction `json:"direction"`
}

// Validate checks the block size, the measure and the direction.
func (p *BytesParams) Validate() error {
	if p.Block < 1 {
		return fmt.Errorf("block %d: must be at least 1", p.Block)
	}
	switch p.Count {
	case "wire", "payload":
	default:
		return fmt.Errorf("count %q: want \"wire\" or \"payload\"", p.Count)
	}
	return p.Direction.Validate()
}

// Bytes is the bytes policy: one unit per started block of a message's
// wire or payload bytes.
type Bytes struct {
	block     uint64
	payload   bool
	direction Direction
}

func newBytes(raw json.RawMessage) (Policy, error) {
	p := BytesParams{Block: BytesDefaultBlock, Count: "wire", Direction: DirectionBoth}
	if err := DecodeParams(raw, &p); err != nil {
		return nil, &ParamsError{Policy: BytesName, Err: err}
	}
	return Bytes{block: p.Block, payload: p.Count == "payload", direction: p.Direction}, nil
}

// Name returns "bytes".
func (Bytes) Name() string { return BytesName }

// Version returns BytesVersion.
func (Bytes) Version() int { return BytesVersion }

// Units returns the number of started blocks in m's measured size, 0 for a
// message of the direction not priced. It carries no state.
func (b Bytes) Units(_ *Stream, _ []byte, m *event.Message) (uint64, []byte, error) {
	if !b.direction.Selects(m.Direction) {
		return 0, nil, nil
	}
	n := m.WireSize
	if b.payload {
		n = m.PayloadSize
	}
	// n/block rounded up, without the overflow of n+block-1.
	u := n / b.block
	if n%b.block != 0 {
		u++
	}
	return u, nil, nil
}

var _ Policy = Bytes{}
