package meter

import (
	"bytes"
	"database/sql"
	"slices"
	"time"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// stream is a partition's in-memory state of one stream: its ledger row as
// the batch being built leaves it, how it is priced, and bookkeeping. When a
// batch fails, the partition discards every stream and reads them again.
type stream struct {
	ledger.Stream
	pricing pricing
	// ps is the stream as its policy sees it, filled on first use.
	ps *policy.Stream

	// stored: the row exists in Postgres, or in a batch committing before
	// the one being built (which then writes over it).
	stored bool
	// batch is the seq of the last batch that touched the stream, closedIn
	// that of the batch that closed it.
	batch, closedIn int64
}

// policyStream returns the stream as its policy sees it.
func (s *stream) policyStream() *policy.Stream {
	if s.ps == nil {
		s.ps = &policy.Stream{Protocol: s.Protocol, Service: s.Service, Application: s.Application}
	}
	return s.ps
}

// maxGaps bounds the gaps tracked per stream; beyond it the oldest is
// dropped (with a FindingGapsUntracked).
const maxGaps = 256

// placement is where an event's seq falls in its stream.
type placement int

const (
	next      placement = iota // the next seq
	ahead                      // beyond the next: a gap opens before it
	late                       // in a gap: an event that was missing
	duplicate                  // metered already
)

// place says where seq falls; for a late seq it also returns the index of
// its gap.
func (s *stream) place(seq int64) (placement, int) {
	switch {
	case seq == s.LastSeq+1:
		return next, -1
	case seq > s.LastSeq:
		return ahead, -1
	}
	for i, g := range s.Gaps {
		if g.From <= seq && seq <= g.To {
			return late, i
		}
	}
	return duplicate, -1
}

// openGap records that the seqs after LastSeq and before seq are missing;
// it returns the gap dropped to make room, if any.
func (s *stream) openGap(seq int64) (dropped ledger.Gap, ok bool) {
	g := ledger.Gap{From: s.LastSeq + 1, To: seq - 1, Finding: s.LastSeq + 1, Prev: bytes.Clone(s.Chain)}
	if len(s.Gaps) == maxGaps {
		dropped, ok = s.Gaps[0], true
		s.Gaps = slices.Delete(s.Gaps, 0, 1)
	}
	s.Gaps = append(s.Gaps, g)
	return dropped, ok
}

// fill takes late seq out of gap i. It returns the chain the event must
// follow when known (the gap starts at seq), and whether the gap's finding
// is now resolved (no part of it is missing any more).
func (s *stream) fill(i int, seq int64, chain []byte) (prev []byte, resolved bool) {
	g := s.Gaps[i]
	if seq == g.From {
		prev = g.Prev
	}
	var parts []ledger.Gap
	if seq > g.From {
		parts = append(parts, ledger.Gap{From: g.From, To: seq - 1, Finding: g.Finding, Prev: g.Prev})
	}
	if seq < g.To {
		parts = append(parts, ledger.Gap{From: seq + 1, To: g.To, Finding: g.Finding, Prev: bytes.Clone(chain)})
	}
	s.Gaps = slices.Replace(s.Gaps, i, i+1, parts...)
	for _, o := range s.Gaps {
		if o.Finding == g.Finding {
			return prev, false
		}
	}
	return prev, true
}

// pair applies the pairing rule to the message at seq on its side and
// returns its counterpart: the latest message of the other side, or NULL
// when none has been seen yet (the message then pairs with the stream's
// first counterpart, once there is one).
//
// The rule. CLIENT_TO_UPSTREAM messages are the request side,
// UPSTREAM_TO_CLIENT messages the response side (a message of unspecified
// direction counts as the request side). A relay pairs the most recent
// request with the most recent response of its stream at the moment its
// message is metered. Before the first message of the other side there is
// no counterpart: such relays wait, and all of them take the first message
// of the other side when it arrives (FirstCounterpartSeq). A stream that
// closes with relays still waiting leaves them unpaired. Only the messages
// before the first of the other side can wait, so waiting happens at most
// once per stream.
func (s *stream) pair(response bool, seq int64) sql.Null[int64] {
	own, other := &s.LastRequestSeq, &s.LastResponseSeq
	if response {
		own, other = other, own
	}
	if !own.Valid && other.Valid {
		s.FirstCounterpartSeq = sql.Null[int64]{V: seq, Valid: true}
	}
	if !own.Valid || seq > own.V { // a late event does not move the latest back
		*own = sql.Null[int64]{V: seq, Valid: true}
	}
	return *other
}

// row returns the stream's row for a batch: a copy that later batches
// cannot change.
func (s *stream) row() ledger.Stream {
	r := s.Stream
	r.Chain = bytes.Clone(s.Chain)
	r.PolicyState = bytes.Clone(s.PolicyState)
	r.Gaps = slices.Clone(s.Gaps)
	return r
}

// abandoned reports whether the stream, open, has seen no event for longer
// than timeout by the partition's clock now.
func (s *stream) abandoned(now time.Time, timeout time.Duration) bool {
	return !s.Closed() && now.Sub(s.LastObservedAt) > timeout
}

// unixTime converts unix nanoseconds to a UTC time.
func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// chain32 returns a stored chain as an array; one of the wrong length (a
// corrupt row) is zero, which no event's chain follows.
func chain32(b []byte) (c [event.ChainSize]byte) {
	if len(b) == len(c) {
		copy(c[:], b)
	}
	return c
}
