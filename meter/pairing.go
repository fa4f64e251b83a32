package meter

import "github.com/relaymeter/relaymeter/ingest/event"

// The pairing rule. A stream has two sides: CLIENT_TO_UPSTREAM messages are
// the request side, UPSTREAM_TO_CLIENT messages the response side (a
// message of unspecified direction counts as the request side). A relay
// pairs the most recent request with the most recent response of its
// stream at the moment its message is metered: a request's relays take the
// latest response seen so far, a response's (or notification's) relays the
// latest request. Before the first message of the other side there is no
// counterpart: such relays wait (counterpart NULL) and all of them take the
// first counterpart when it arrives. A stream that closes with relays still
// waiting marks them unpaired. Since only the messages before the first of
// the other side can wait, waiting happens at most once per stream.
type pairing struct {
	lastRequest  int64 // seq of the latest request-side message; 0 none
	lastResponse int64 // seq of the latest response-side message; 0 none
}

// responseSide reports whether d is the response side.
func responseSide(d event.Direction) bool { return d == event.Direction_UPSTREAM_TO_CLIENT }

// observe records the message at seq on its side and returns the request
// and response seqs of its relays (0: waiting) and whether it is the first
// counterpart of relays of the other side that wait.
func (p *pairing) observe(response bool, seq int64) (requestSeq, responseSeq int64, fillsWaiting bool) {
	if response {
		fillsWaiting = p.lastResponse == 0 && p.lastRequest != 0
		p.lastResponse = seq
		return p.lastRequest, seq, fillsWaiting
	}
	fillsWaiting = p.lastRequest == 0 && p.lastResponse != 0
	p.lastRequest = seq
	return seq, p.lastResponse, fillsWaiting
}

// waiting reports whether relays of one side may wait for a counterpart:
// exactly one side has been seen.
func (p *pairing) waiting() bool { return (p.lastRequest == 0) != (p.lastResponse == 0) }
