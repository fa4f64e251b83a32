package ledger

// relayAtSQL is the core's (branch settle, ledger/messages.go), until it is
// committed there: delete this file at the merge.
const relayAtSQL = `CASE WHEN m.direction = 2 AND m.counterpart_seq IS NOT NULL THEN least(m.observed_at,
		(SELECT r.observed_at FROM messages r WHERE r.stream_id = m.stream_id AND r.seq = m.counterpart_seq))
	ELSE m.observed_at END`
