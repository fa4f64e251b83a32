package meter

import (
	"bytes"
	"time"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
)

// stream is a partition's in-memory state of one stream. It is changed while
// a batch is built and becomes the committed state when the batch commits;
// when a batch fails, the partition discards all its streams and reloads
// them from Postgres.
type stream struct {
	row     ledger.Stream // identity and close details; counts are below
	pricing pricing

	lastSeq int64
	chain   [event.ChainSize]byte
	pairing pairing
	state   []byte // the policy's carry

	msgsUp, bytesUp, msgsDown, bytesDown int64
	relays, units, duplicates            int64

	closed bool
	// stored: the stream has a row in Postgres (loaded), or in a batch
	// committed or being committed before the one being built.
	stored bool
	// batch: the seq of the last batch that touched the stream.
	batch int64
	// waiting: indexes in the batch's relays of relays waiting for a
	// counterpart, written by this batch.
	waiting []int
}

// fromRow restores a stream from its stored row.
func fromRow(r ledger.Stream, p pricing) *stream {
	s := &stream{row: r, pricing: p, lastSeq: r.LastSeq, state: r.PolicyState,
		msgsUp: r.MessagesToUpstream, bytesUp: r.BytesToUpstream, msgsDown: r.MessagesToClient,
		bytesDown: r.BytesToClient, relays: r.Relays, units: r.Units, duplicates: r.Duplicates,
		closed: r.ClosedAt != nil, stored: true}
	copy(s.chain[:], r.Chain)
	if r.LastRequestSeq != nil {
		s.pairing.lastRequest = *r.LastRequestSeq
	}
	if r.LastResponseSeq != nil {
		s.pairing.lastResponse = *r.LastResponseSeq
	}
	return s
}

// toRow returns the row to store for s.
func (s *stream) toRow() ledger.Stream {
	r := s.row
	// Copies: the row is written while later batches change the stream.
	r.LastSeq, r.Chain, r.PolicyState = s.lastSeq, append([]byte(nil), s.chain[:]...), bytes.Clone(s.state)
	r.MessagesToUpstream, r.BytesToUpstream, r.MessagesToClient, r.BytesToClient = s.msgsUp, s.bytesUp, s.msgsDown, s.bytesDown
	r.Relays, r.Units, r.Duplicates = s.relays, s.units, s.duplicates
	r.LastRequestSeq, r.LastResponseSeq = nil, nil
	if v := s.pairing.lastRequest; v != 0 {
		r.LastRequestSeq = &v
	}
	if v := s.pairing.lastResponse; v != 0 {
		r.LastResponseSeq = &v
	}
	return r
}

// unixTime converts unix nanoseconds to a UTC time.
func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
