package meter

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
)

// unknown is the service, application, supplier and protocol of a stream
// whose StreamOpened the meter never saw: its events are metered under this
// placeholder identity (message policy v1, weight 1) so no usage is lost,
// with an unknown_stream finding.
const unknown = "unknown"

// RelayID returns the id of the relay for unit unitIndex of the message at
// seq of a stream: sha256(stream id ‖ seq as big-endian uint64 ‖ unit index
// as big-endian uint32).
func RelayID(streamID [16]byte, seq uint64, unitIndex uint32) [32]byte {
	var buf [16 + 8 + 4]byte
	copy(buf[:16], streamID[:])
	binary.BigEndian.PutUint64(buf[16:24], seq)
	binary.BigEndian.PutUint32(buf[24:], unitIndex)
	return sha256.Sum256(buf[:])
}

type usageKey struct {
	minute                                   int64 // unix seconds, whole minutes
	protocol, service, application, supplier string
}

// pending is a built batch on its way to Postgres, with what the
// partition does once it is committed.
type pending struct {
	b ledger.Batch
	// seq numbers the batches a builder builds; a stream remembers the
	// last one that touched it.
	seq int64
	// closed are the streams this batch closes or that were closed when
	// it touched them: they leave memory once it is committed, unless a
	// later batch touched them again.
	closed []*stream
	dups   int // duplicates dropped
	n      int // records metered
}

// builder turns a partition's records into ledger.Batches, updating the
// partition's stream state as it goes. It has two batch buffers, so that
// one batch can be built while the one before it is being committed; a
// stream's state then runs ahead of Postgres by at most that batch, and a
// failed commit discards all of it (reset).
type builder struct {
	m         *Meter
	partition int
	streams   map[[16]byte]*stream

	bufs    [2]pending
	cur     *pending      // the batch being built
	b       *ledger.Batch // &cur.b
	seq     int64
	usage   map[usageKey]int // index in b.Usage
	touched []*stream
	ev      event.Event
}

func newBuilder(m *Meter, partition int) *builder {
	bl := &builder{m: m, partition: partition, streams: map[[16]byte]*stream{}, usage: map[usageKey]int{}}
	bl.cur = &bl.bufs[0]
	bl.b = &bl.cur.b
	return bl
}

// reset discards every stream's state, as after a failed batch.
func (bl *builder) reset() {
	clear(bl.streams)
	for i := range bl.bufs {
		clear(bl.bufs[i].closed)
		bl.bufs[i].closed = bl.bufs[i].closed[:0]
	}
	bl.begin(ledger.NoOffset)
}

// begin starts a batch at offset from, in the batch buffer the previous
// batch did not use; that batch must be committed by the time the one
// after this begins.
func (bl *builder) begin(from int64) {
	bl.seq++
	bl.cur = &bl.bufs[bl.seq%2]
	bl.b = &bl.cur.b
	p, b := bl.cur, bl.b
	*b = ledger.Batch{Group: bl.m.cfg.GroupID, Topic: bl.m.cfg.Topic, Partition: bl.partition, From: from, To: from,
		Messages: b.Messages[:0], Relays: b.Relays[:0], FillResponses: b.FillResponses[:0], FillRequests: b.FillRequests[:0],
		Unpaired: b.Unpaired[:0], Usage: b.Usage[:0], Streams: b.Streams[:0], Findings: b.Findings[:0]}
	clear(p.closed)
	p.seq, p.closed, p.dups, p.n = bl.seq, p.closed[:0], 0, 0
	clear(bl.usage)
	for _, s := range bl.touched {
		s.waiting = s.waiting[:0]
	}
	clear(bl.touched)
	bl.touched = bl.touched[:0]
}

// peekStreamID returns the stream id field of a record value without
// decoding the rest.
func peekStreamID(v []byte) ([16]byte, bool) {
	for len(v) > 0 {
		num, typ, n := protowire.ConsumeTag(v)
		if n < 0 {
			return [16]byte{}, false
		}
		v = v[n:]
		if num == 2 && typ == protowire.BytesType {
			b, n := protowire.ConsumeBytes(v)
			if n < 0 || len(b) != 16 {
				return [16]byte{}, false
			}
			return [16]byte(b), true
		}
		n = protowire.ConsumeFieldValue(num, typ, v)
		if n < 0 {
			return [16]byte{}, false
		}
		v = v[n:]
	}
	return [16]byte{}, false
}

// load brings the stored state of the records' streams not in memory.
func (bl *builder) load(ctx context.Context, recs []kafka.Message) error {
	var ids [][16]byte
	seen := map[[16]byte]bool{}
	for i := range recs {
		id, ok := peekStreamID(recs[i].Value)
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		if _, ok := bl.streams[id]; !ok {
			ids = append(ids, id)
		}
	}
	rows, err := bl.m.store.Streams(ctx, ids)
	if err != nil {
		return fmt.Errorf("meter: load streams: %w", err)
	}
	for _, r := range rows {
		svc, _, err := bl.m.services.lookup(ctx, r.Service)
		if err != nil {
			return err
		}
		svc.ID = r.Service
		bl.streams[r.StreamID] = fromRow(r, bl.m.services.pricing(svc, r.Policy, r.PolicyVersion, r.ComputeUnits))
	}
	return nil
}

// finding records a finding.
func (bl *builder) finding(f ledger.Finding) {
	bl.b.Findings = append(bl.b.Findings, f)
}

func (bl *builder) streamFinding(kind string, id [16]byte, seq int64, observed int64, detail string) {
	bl.finding(ledger.Finding{Kind: kind, StreamID: id, HasStream: true, Seq: seq, HasSeq: true,
		Detail: detail, ObservedAt: unixTime(observed)})
}

func (bl *builder) touch(s *stream) {
	if s.batch != bl.seq {
		s.batch = bl.seq
		bl.touched = append(bl.touched, s)
	}
}

// add meters one record. It returns an error wrapping event.ErrUnknownMajor
// for a record this build must not guess about; the record is then not part
// of the batch.
func (bl *builder) add(ctx context.Context, rec *kafka.Message) error {
	ev := &bl.ev
	if err := event.Decode(rec.Value, ev); err != nil {
		if errors.Is(err, event.ErrUnknownMajor) {
			return err
		}
		bl.undecodable(rec, err.Error())
		return nil
	}
	if len(ev.StreamId) != 16 || ev.Seq == 0 || ev.Seq > 1<<63-1 || ev.Body == nil {
		bl.undecodable(rec, fmt.Sprintf("stream id of %d bytes, seq %d, body %T", len(ev.StreamId), ev.Seq, ev.Body))
		return nil
	}
	defer func() { bl.b.To = rec.Offset + 1 }()
	id, seq := [16]byte(ev.StreamId), int64(ev.Seq)
	s := bl.streams[id]
	fresh := s == nil
	switch {
	case fresh:
		var err error
		if s, err = bl.open(ctx, id, rec); err != nil {
			return err
		}
	case seq <= s.lastSeq:
		s.duplicates++
		bl.cur.dups++
		bl.touch(s)
		if seq == s.lastSeq && [event.ChainSize]byte(ev.Chain) != s.chain {
			bl.streamFinding(ledger.FindingDuplicateMismatch, id, seq, ev.ObservedAt,
				"a duplicate of the last metered seq carries a different chain")
		}
		return nil
	case seq > s.lastSeq+1:
		bl.streamFinding(ledger.FindingGap, id, seq, ev.ObservedAt, fmt.Sprintf("expected seq %d, got %d", s.lastSeq+1, seq))
	default:
		if !event.Chained(rec.Value, s.chain) {
			bl.streamFinding(ledger.FindingChainMismatch, id, seq, ev.ObservedAt,
				fmt.Sprintf("chain of seq %d does not follow seq %d", seq, s.lastSeq))
		}
	}
	bl.touch(s)
	s.lastSeq = seq
	copy(s.chain[:], ev.Chain)
	switch body := ev.Body.(type) {
	case *event.Event_Message:
		bl.message(s, seq, ev.ObservedAt, body.Message)
	case *event.Event_Closed:
		bl.close(s, seq, ev.ObservedAt, body.Closed)
	case *event.Event_Opened:
		// A StreamOpened for a stream already metered (and not a
		// duplicate): its identity stays as first recorded.
		if !fresh {
			bl.streamFinding(ledger.FindingReopened, id, seq, ev.ObservedAt,
				fmt.Sprintf("StreamOpened at seq %d of a stream already metered; identity kept", seq))
		}
	}
	return nil
}

func (bl *builder) undecodable(rec *kafka.Message, why string) {
	bl.finding(ledger.Finding{Kind: ledger.FindingUndecodable, Topic: rec.Topic, Partition: rec.Partition,
		Offset: rec.Offset, HasOffset: true, Detail: why})
	bl.b.To = rec.Offset + 1
}

// open creates the state of a stream first seen at rec: from its
// StreamOpened, or under the placeholder identity for an event of a stream
// never opened. It records a gap when the first seq is not 1 and checks the
// chain of seq 1.
func (bl *builder) open(ctx context.Context, id [16]byte, rec *kafka.Message) (*stream, error) {
	ev := &bl.ev
	seq := int64(ev.Seq)
	s := &stream{row: ledger.Stream{StreamID: id, Topic: rec.Topic, Partition: rec.Partition, EdgeID: ev.EdgeId,
		OpenedAt: unixTime(ev.ObservedAt)}}
	o := ev.GetOpened()
	if o == nil {
		s.row.Protocol, s.row.Service, s.row.Application, s.row.Supplier = unknown, unknown, unknown, unknown
		s.pricing = defaultPricing()
		bl.streamFinding(ledger.FindingUnknownStream, id, seq, ev.ObservedAt,
			fmt.Sprintf("first event of the stream is seq %d, not a StreamOpened; metered as service %q", seq, unknown))
	} else {
		s.row.Protocol, s.row.Service, s.row.Application, s.row.Supplier = o.Protocol.String(), o.Service, o.Application, o.Supplier
		s.row.ClientAddr, s.row.UpstreamAddr = o.ClientAddr, o.UpstreamAddr
		svc, ok, err := bl.m.services.lookup(ctx, o.Service)
		if err != nil {
			return nil, err
		}
		switch {
		case !ok:
			s.pricing = defaultPricing()
			bl.streamFinding(ledger.FindingUnknownService, id, seq, ev.ObservedAt,
				fmt.Sprintf("service %q is not configured; metered with the message policy, weight 1", o.Service))
		default:
			s.pricing = bl.m.services.pricing(svc, svc.Policy, svc.PolicyVersion, svc.ComputeUnitsPerRelay)
			if s.pricing.problem != "" {
				bl.streamFinding(ledger.FindingPolicyError, id, seq, ev.ObservedAt, s.pricing.problem)
			}
		}
		if seq != 1 {
			bl.streamFinding(ledger.FindingGap, id, seq, ev.ObservedAt, fmt.Sprintf("expected seq 1, got %d", seq))
		} else if !event.Chained(rec.Value, [event.ChainSize]byte{}) {
			bl.streamFinding(ledger.FindingChainMismatch, id, seq, ev.ObservedAt, "chain of seq 1 does not start from zero")
		}
	}
	s.row.Policy, s.row.PolicyVersion, s.row.ComputeUnits = s.pricing.policy.Name(), s.pricing.policy.Version(), s.pricing.weight
	bl.streams[id] = s
	return s, nil
}

// message meters a Message: its messages row, its relays, pairing and usage.
func (bl *builder) message(s *stream, seq, observed int64, m *event.Message) {
	units, next, err := s.pricing.policy.Units(s.state, m)
	if err != nil {
		bl.streamFinding(ledger.FindingPolicyError, s.row.StreamID, seq, observed,
			fmt.Sprintf("policy %s v%d: %v; message metered with 0 units", s.row.Policy, s.row.PolicyVersion, err))
		units = 0
	} else {
		s.state = next
	}
	response := responseSide(m.Direction)
	wire := int64(m.WireSize)
	if response {
		s.msgsDown++
		s.bytesDown += wire
	} else {
		s.msgsUp++
		s.bytesUp += wire
	}
	reqSeq, respSeq, fills := s.pairing.observe(response, seq)
	if fills {
		for _, i := range s.waiting {
			if r := &bl.b.Relays[i]; response {
				r.ResponseSeq = seq
			} else {
				r.RequestSeq = seq
			}
		}
		s.waiting = s.waiting[:0]
		if s.stored {
			f := ledger.Fill{StreamID: s.row.StreamID, Seq: seq}
			if response {
				bl.b.FillResponses = append(bl.b.FillResponses, f)
			} else {
				bl.b.FillRequests = append(bl.b.FillRequests, f)
			}
		}
	}
	at := unixTime(observed)
	bl.b.Messages = append(bl.b.Messages, ledger.Message{StreamID: s.row.StreamID, Seq: seq, ObservedAt: at,
		Direction: m.Direction.String(), Role: m.Role.String(), Method: m.Method, BatchSize: int32(m.BatchSize),
		RPCID: m.RpcId, SubscriptionID: m.SubscriptionId, WireSize: wire, PayloadSize: int64(m.PayloadSize),
		Units: int64(units)})
	weight := s.pricing.weight
	for u := range units {
		if reqSeq == 0 || respSeq == 0 {
			s.waiting = append(s.waiting, len(bl.b.Relays))
		}
		bl.b.Relays = append(bl.b.Relays, ledger.Relay{RelayID: RelayID(s.row.StreamID, uint64(seq), uint32(u)),
			StreamID: s.row.StreamID, Seq: seq, UnitIndex: int32(u), RequestSeq: reqSeq, ResponseSeq: respSeq,
			Protocol: s.row.Protocol, Service: s.row.Service, Application: s.row.Application, Supplier: s.row.Supplier,
			Weight: weight, Policy: s.row.Policy, PolicyVersion: int32(s.row.PolicyVersion), ObservedAt: at})
	}
	s.relays += int64(units)
	s.units += int64(units) * weight
	k := usageKey{minute: minuteOf(observed), protocol: s.row.Protocol, service: s.row.Service,
		application: s.row.Application, supplier: s.row.Supplier}
	i, ok := bl.usage[k]
	if !ok {
		i = len(bl.b.Usage)
		bl.usage[k] = i
		bl.b.Usage = append(bl.b.Usage, ledger.UsageDelta{UsageKey: ledger.UsageKey{Minute: unixTime(k.minute * 1e9),
			Protocol: k.protocol, Service: k.service, Application: k.application, Supplier: k.supplier}})
	}
	u := &bl.b.Usage[i]
	u.Messages++
	u.Relays += int64(units)
	u.Units += int64(units) * weight
	u.Bytes += wire
}

// close ends a stream: its close details, completeness against the
// StreamClosed counts, and unpaired relays.
func (bl *builder) close(s *stream, seq, observed int64, c *event.StreamClosed) {
	at := unixTime(observed)
	reason, code := c.Reason, c.CloseCode
	s.row.ClosedAt, s.row.CloseReason, s.row.CloseCode = &at, &reason, &code
	s.closed = true
	complete := uint64(s.msgsUp) == c.MessagesToUpstream && uint64(s.bytesUp) == c.BytesToUpstream &&
		uint64(s.msgsDown) == c.MessagesToClient && uint64(s.bytesDown) == c.BytesToClient
	s.row.Complete = &complete
	if !complete {
		bl.streamFinding(ledger.FindingCountMismatch, s.row.StreamID, seq, observed, fmt.Sprintf(
			"closed says to upstream %d messages %d bytes, to client %d messages %d bytes; metered %d/%d, %d/%d",
			c.MessagesToUpstream, c.BytesToUpstream, c.MessagesToClient, c.BytesToClient,
			s.msgsUp, s.bytesUp, s.msgsDown, s.bytesDown))
	}
	if s.pairing.waiting() {
		for _, i := range s.waiting {
			bl.b.Relays[i].Unpaired = true
		}
		s.waiting = s.waiting[:0]
		if s.stored {
			bl.b.Unpaired = append(bl.b.Unpaired, s.row.StreamID)
		}
	}
}

// finish completes the batch's stream rows before the commit. Its streams
// count as stored from now on: a later batch commits after this one, so
// it pairs this batch's waiting relays with an UPDATE.
func (bl *builder) finish() {
	for _, s := range bl.touched {
		bl.b.Streams = append(bl.b.Streams, s.toRow())
		s.stored = true
		if s.closed {
			bl.cur.closed = append(bl.cur.closed, s)
		}
	}
}

// committed runs once p is committed: the streams it closed leave memory
// (a late duplicate reloads them), unless a later batch touched them.
func (bl *builder) committed(p *pending) {
	for _, s := range p.closed {
		if s.batch == p.seq {
			delete(bl.streams, s.row.StreamID)
		}
	}
	clear(p.closed)
	p.closed = p.closed[:0]
}

// minuteOf returns the unix seconds of the minute that contains ns.
func minuteOf(ns int64) int64 {
	const minute = 60e9
	q := ns / minute
	if ns%minute < 0 {
		q--
	}
	return q * 60
}
