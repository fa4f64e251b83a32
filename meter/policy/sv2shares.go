package policy

import (
	"encoding/json"
	"fmt"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/stratum/sv2"
)

// Sv2SharesName is the name of the sv2-shares policy.
const Sv2SharesName = "sv2-shares"

// Sv2SharesVersion is the current version of the sv2-shares policy.
const Sv2SharesVersion = 1

// sv2SubmitSharesSuccess is the event method of a SubmitShares.Success.
const sv2SubmitSharesSuccess = "SubmitShares.Success"

func init() {
	Register(Definition{Name: Sv2SharesName, Version: Sv2SharesVersion, New: newSv2Shares, Payload: true})
}

// Sv2SharesParams are the sv2-shares policy's parameters.
type Sv2SharesParams struct {
	// By is what a SubmitShares.Success is worth: "count" (the default),
	// its new_submits_accepted_count, or "sum", its new_shares_sum.
	By string `json:"by"`
}

// Validate refuses a By other than count and sum.
func (p *Sv2SharesParams) Validate() error {
	if p.By != "count" && p.By != "sum" {
		return fmt.Errorf("by %q: want \"count\" or \"sum\"", p.By)
	}
	return nil
}

// Sv2Shares is the sv2-shares policy for Stratum V2 streams: the units of
// a SubmitShares.Success the upstream sends are the work it accepts (its
// count of submits or its sum of shares); every other message is 0 units.
//
// It reads the Sv2 message payload (the frame without its 6-byte header),
// so it needs payloads captured whole; a Success whose payload is missing,
// truncated or malformed is an error.
type Sv2Shares struct {
	sum bool
}

func newSv2Shares(raw json.RawMessage) (Policy, error) {
	p := Sv2SharesParams{By: "count"}
	if err := DecodeParams(raw, &p); err != nil {
		return nil, &ParamsError{Policy: Sv2SharesName, Err: err}
	}
	return Sv2Shares{sum: p.By == "sum"}, nil
}

// Name returns "sv2-shares".
func (Sv2Shares) Name() string { return Sv2SharesName }

// Version returns Sv2SharesVersion.
func (Sv2Shares) Version() int { return Sv2SharesVersion }

// Units decodes a SubmitShares.Success sent upstream to client and returns
// its accepted count or sum; other messages are 0 units. It carries no
// state.
func (p Sv2Shares) Units(_ *Stream, _ []byte, m *event.Message) (uint64, []byte, error) {
	if m.Direction != event.Direction_UPSTREAM_TO_CLIENT || m.Method != sv2SubmitSharesSuccess {
		return 0, nil, nil
	}
	if uint64(len(m.Payload)) < m.PayloadSize || len(m.Payload) == 0 {
		return 0, nil, fmt.Errorf("SubmitShares.Success: payload captured partially (%d of %d bytes): sv2-shares needs whole payloads", len(m.Payload), m.PayloadSize)
	}
	var s sv2.SubmitSharesSuccess
	if err := s.Decode(m.Payload); err != nil {
		return 0, nil, fmt.Errorf("decoding SubmitShares.Success: %w", err)
	}
	if p.sum {
		return s.NewSharesSum, nil, nil
	}
	return uint64(s.NewSubmitsAcceptedCount), nil, nil
}

var _ Policy = Sv2Shares{}
