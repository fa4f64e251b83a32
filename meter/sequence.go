package meter

import (
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
)

// sequence places a known stream's event: it reports whether to meter it
// (the next seq, one beyond a gap, or a late one filling a gap), recording
// the gap or duplicate otherwise, and checks the chain where it can.
func (bl *builder) sequence(s *stream, seq int64, rec *kafka.Message) bool {
	ev := bl.ev
	where, gap := s.place(seq)
	if where == duplicate {
		s.Duplicates++
		bl.cur.dups++
		bl.touch(s)
		if seq == s.LastSeq && string(ev.Chain) != string(s.Chain) {
			bl.streamFinding(FindingDuplicateMismatch, s.StreamID, seq, ev.ObservedAt,
				"a duplicate of the last metered seq carries a different chain")
		}
		return false
	}
	bl.touch(s)
	switch where {
	case next:
		if !event.Chained(rec.Value, chain32(s.Chain)) {
			bl.streamFinding(FindingChainMismatch, s.StreamID, seq, ev.ObservedAt,
				fmt.Sprintf("chain of seq %d does not follow seq %d", seq, s.LastSeq))
		}
	case ahead:
		bl.gap(s, seq)
	case late:
		finding := s.Gaps[gap].Finding
		prev, resolved := s.fill(gap, seq, ev.Chain)
		if prev != nil && !event.Chained(rec.Value, chain32(prev)) {
			bl.streamFinding(FindingChainMismatch, s.StreamID, seq, ev.ObservedAt,
				fmt.Sprintf("chain of late seq %d does not follow seq %d", seq, seq-1))
		}
		if resolved {
			bl.b.Resolved = append(bl.b.Resolved, ledger.Resolution{Kind: FindingGap, StreamID: s.StreamID, Seq: finding})
		}
		return true
	}
	if s.Closed() && seq > s.LastSeq {
		bl.afterClose(s, seq)
	}
	s.LastSeq, s.Chain = seq, append(s.Chain[:0], ev.Chain...)
	return true
}

// gap records that the seqs between the stream's last and seq are missing.
func (bl *builder) gap(s *stream, seq int64) {
	ev := bl.ev
	bl.streamFinding(FindingGap, s.StreamID, s.LastSeq+1, ev.ObservedAt,
		fmt.Sprintf("seqs %d to %d missing (got seq %d)", s.LastSeq+1, seq-1, seq))
	if dropped, ok := s.openGap(seq); ok {
		bl.streamFinding(FindingGapsUntracked, s.StreamID, dropped.From, ev.ObservedAt,
			fmt.Sprintf("more than %d gaps: seqs %d to %d no longer tracked; an event filling them counts as a duplicate",
				maxGaps, dropped.From, dropped.To))
	}
}

// afterClose handles an event beyond a closed stream's last: a stream the
// meter closed as abandoned opens again; otherwise it is a finding.
func (bl *builder) afterClose(s *stream, seq int64) {
	ev := bl.ev
	if s.CloseReason.V == reasonAbandoned {
		bl.streamFinding(FindingResumed, s.StreamID, seq, ev.ObservedAt,
			fmt.Sprintf("event at seq %d after the meter closed the stream as abandoned; open again", seq))
		s.ClosedAt, s.CloseReason, s.closedIn = ledger.Stream{}.ClosedAt, ledger.Stream{}.CloseReason, 0
		return
	}
	bl.streamFinding(FindingAfterClose, s.StreamID, seq, ev.ObservedAt,
		fmt.Sprintf("event at seq %d after the stream's StreamClosed at seq %d; metered", seq, s.LastSeq))
}
