package meter

import "github.com/relaymeter/relaymeter/ledger"

// Finding kinds: what the meter notices and does not paper over, recorded
// in the ledger's findings. Each names what happened, not what to do.
const (
	// FindingGap: a stream's seq skipped ahead; the seqs missing are in
	// the detail. A late event that fills the whole gap resolves it.
	FindingGap = "gap"
	// FindingChainMismatch: an event's chain does not follow the previous
	// event of its stream.
	FindingChainMismatch = "chain_mismatch"
	// FindingUnknownStream: the first event of a stream is not its
	// StreamOpened; the stream is metered under the placeholder identity.
	FindingUnknownStream = "unknown_stream"
	// FindingUnknownService: a stream of a service not configured, metered
	// with the message policy, weight 1.
	FindingUnknownService = "unknown_service"
	// FindingPolicyError: a stream's policy could not be built, or failed on
	// a message (which is then metered with 0 units).
	FindingPolicyError = "policy_error"
	// FindingCountMismatch: StreamClosed counts differ from what was
	// metered.
	FindingCountMismatch = "count_mismatch"
	// FindingDuplicateMismatch: a duplicate of the last metered seq whose
	// chain differs from the metered one.
	FindingDuplicateMismatch = "duplicate_mismatch"
	// FindingReopened: a StreamOpened for a stream already metered; its
	// identity is kept as first recorded.
	FindingReopened = "reopened"
	// FindingQuarantined: a record the meter could not meter (undecodable,
	// empty, out of range, refused by Postgres), kept whole in the
	// quarantine with why.
	FindingQuarantined = "quarantined"
	// FindingUncleanText: an event carried text that was not valid UTF-8,
	// held a NUL or was too long (its edge did not clean it); the meter
	// stored it cleaned.
	FindingUncleanText = "unclean_text"
	// FindingOffsetAhead: the stored offset of a partition is beyond the
	// end of its log (the topic was recreated or lost data); the partition
	// is metered again from the log's start, duplicates dropped.
	FindingOffsetAhead = "offset_ahead"
	// FindingOffsetBehind: records between the stored offset and the log's
	// start were deleted (retention) before they were metered.
	FindingOffsetBehind = "offset_behind"
	// FindingAfterClose: an event after its stream's StreamClosed; metered.
	FindingAfterClose = "after_close"
	// FindingResumed: an event for a stream the meter had closed as
	// abandoned; the stream is open again.
	FindingResumed = "resumed"
	// FindingGapsUntracked: a stream skipped so often that the meter stopped
	// tracking its oldest gap; an event that would have filled it counts
	// as a duplicate.
	FindingGapsUntracked = "gaps_untracked"
	// FindingRemainder: a stream closed while its policy carried an
	// unfinished unit (a record still waiting for its delimiter); the
	// detail says what, and none of it is billed.
	FindingRemainder = "remainder"
	// FindingLateRelay: a message whose relays belong to a session window
	// settled before it was metered; the ledger records it under the
	// settlement lock and the next settlement adjusts it.
	FindingLateRelay = ledger.FindingLateRelay
	// FindingUncrossedAfterSettlement: a message a close says never
	// crossed the edge, whose window was settled with it; the next
	// settlement takes it back.
	FindingUncrossedAfterSettlement = ledger.FindingUncrossedAfterSettlement
)
