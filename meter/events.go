package meter

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter/policy"
)

// open creates the state of a stream first seen at rec: from its
// StreamOpened, or under the placeholder identity for an event of a stream
// never opened. A first seq other than 1 opens a gap before it; seq 1's
// chain must start from zero.
func (bl *builder) open(ctx context.Context, id uuid.UUID, rec *kafka.Message) (*stream, error) {
	ev := bl.ev
	seq := int64(ev.Seq)
	at := unixTime(ev.ObservedAt)
	s := &stream{Stream: ledger.Stream{StreamID: id, Topic: rec.Topic, Partition: int32(rec.Partition),
		EdgeID: ev.EdgeId, OpenedAt: at, LastObservedAt: at, Chain: make([]byte, event.ChainSize)}}
	var err error
	if o := ev.GetOpened(); o == nil {
		s.Protocol, s.Service, s.Application, s.Supplier = unknown, unknown, unknown, unknown
		if s.pricing, err = bl.m.services.fallbackPricing(ctx); err != nil {
			return nil, err
		}
		bl.streamFinding(FindingUnknownStream, id, seq, ev.ObservedAt,
			fmt.Sprintf("first event of the stream is seq %d, not a StreamOpened; metered as service %q", seq, unknown))
	} else {
		s.Protocol, s.Service, s.Application, s.Supplier = o.Protocol.String(), o.Service, o.Application, o.Supplier
		s.ClientAddr, s.UpstreamAddr, s.APIKeyID = o.ClientAddr, o.UpstreamAddr, o.ApiKeyId
		if err := bl.price(ctx, s, seq); err != nil {
			return nil, err
		}
	}
	s.PolicyID, s.ComputeUnits = s.pricing.policyID, s.pricing.weight
	bl.touch(s)
	if seq != 1 {
		bl.gap(s, seq)
	} else if !event.Chained(rec.Value, [event.ChainSize]byte{}) {
		bl.streamFinding(FindingChainMismatch, id, seq, ev.ObservedAt, "chain of seq 1 does not start from zero")
	}
	s.LastSeq, s.Chain = seq, append(s.Chain[:0], ev.Chain...)
	return s, nil
}

// price gives a newly opened stream the policy version of its service in
// force when it opened, and the service's weight, which it keeps for its
// whole life.
func (bl *builder) price(ctx context.Context, s *stream, seq int64) error {
	ev := bl.ev
	pol, weight, ok, err := bl.m.services.lookup(ctx, s.Service, s.OpenedAt)
	if err != nil {
		return err
	}
	if !ok {
		if s.pricing, err = bl.m.services.fallbackPricing(ctx); err != nil {
			return err
		}
		bl.streamFinding(FindingUnknownService, s.StreamID, seq, ev.ObservedAt,
			fmt.Sprintf("service %q is not configured; metered with the message policy, weight 1", s.Service))
		return nil
	}
	if s.pricing, err = bl.m.services.priced(ctx, pol.ID, weight); err != nil {
		return err
	}
	if s.pricing.problem != "" {
		bl.streamFinding(FindingPolicyError, s.StreamID, seq, ev.ObservedAt, s.pricing.problem)
	}
	return nil
}

// message meters a Message: its row, its units, its pairing, the stream's
// counts. The edge's own messages (edgeOwn) are 0 units and pair with
// nothing, before any policy sees them.
func (bl *builder) message(s *stream, seq, observed int64, m *event.Message) {
	own := edgeOwn(m)
	var units uint64
	if !own {
		var next []byte
		var err error
		units, next, err = s.pricing.units(s.policyStream(), s.PolicyState, m)
		if err != nil {
			bl.streamFinding(FindingPolicyError, s.StreamID, seq, observed,
				fmt.Sprintf("policy %s v%d: %v; message metered with 0 units", s.pricing.policy.Name(), s.pricing.policy.Version(), err))
			units = 0
		} else {
			s.PolicyState = append(s.PolicyState[:0], next...)
		}
	}
	response := m.Direction == event.Direction_UPSTREAM_TO_CLIENT
	wire := int64(m.WireSize)
	if response {
		s.MessagesToClient++
		s.BytesToClient += wire
	} else {
		s.MessagesToUpstream++
		s.BytesToUpstream += wire
	}
	s.Relays += int64(units)
	at := unixTime(observed)
	var counterpart sql.Null[int64]
	if !own {
		counterpart = s.pair(response, seq)
		if !response && s.LastRequestSeq.V == seq {
			s.LastRequestAt = some(at)
		}
	}
	bl.b.Messages = append(bl.b.Messages, ledger.Message{StreamID: s.StreamID, Seq: seq, ObservedAt: at,
		Direction: int16(m.Direction), Role: int16(m.Role), Method: m.Method, BatchSize: int32(m.BatchSize),
		RPCID: m.RpcId, SubscriptionID: m.SubscriptionId, WireSize: wire, PayloadSize: int64(m.PayloadSize),
		Units: int64(units), CounterpartSeq: counterpart, Origin: int16(m.Origin), Absorbed: m.AbsorbedByEdge,
		RelayAt: ledger.RelayTime(ledger.Answers(int16(m.Direction), int16(m.Role)), at, counterpart.Valid && s.LastRequestAt.Valid, s.LastRequestAt.V)})
}

// edgeOwn reports whether m is the edge's own business rather than the
// client's: a message the edge wrote (origin EDGE: its answers, its
// re-subscriptions, unsubscribes and health checks) or one it kept from the
// other side (absorbed_by_edge: a request it answered itself). The meter
// bills such a message 0 units without asking the stream's policy, and
// leaves it out of pairing, so that an edge answer never becomes the
// counterpart of a real request (docs/policies.md, "The edge's own
// messages").
func edgeOwn(m *event.Message) bool {
	return m.Origin == event.Origin_EDGE || m.AbsorbedByEdge
}

// close ends a stream: its close details, what crossed the edge, and
// completeness against the StreamClosed counts. Relays still waiting for a
// counterpart become unpaired.
func (bl *builder) close(s *stream, seq, observed int64, c *event.StreamClosed) {
	s.ClosedAt, s.CloseReason, s.CloseCode = some(unixTime(observed)), some(c.Reason), some(c.CloseCode)
	s.closedIn = bl.seq
	if v := c.ForwardedToUpstreamThroughSeq; v != nil {
		s.ForwardedToUpstreamSeq = some(int64(*v))
	}
	if v := c.ForwardedToClientThroughSeq; v != nil {
		s.ForwardedToClientSeq = some(int64(*v))
	}
	complete := uint64(s.MessagesToUpstream) == c.MessagesToUpstream && uint64(s.BytesToUpstream) == c.BytesToUpstream &&
		uint64(s.MessagesToClient) == c.MessagesToClient && uint64(s.BytesToClient) == c.BytesToClient
	s.Complete = some(complete)
	if !complete {
		bl.streamFinding(FindingCountMismatch, s.StreamID, seq, observed, fmt.Sprintf(
			"closed says to upstream %d messages %d bytes, to client %d messages %d bytes; metered %d/%d, %d/%d",
			c.MessagesToUpstream, c.BytesToUpstream, c.MessagesToClient, c.BytesToClient,
			s.MessagesToUpstream, s.BytesToUpstream, s.MessagesToClient, s.BytesToClient))
	}
	bl.remainder(s, seq, observed)
}

// remainder reports what the policy of s still carries unfinished at its
// close (a record without its delimiter): it is not a unit and not billed.
func (bl *builder) remainder(s *stream, seq, observed int64) {
	f, ok := s.pricing.policy.(policy.Finisher)
	if !ok || len(s.PolicyState) == 0 {
		return
	}
	if r := f.Remainder(s.PolicyState); r != "" {
		bl.streamFinding(FindingRemainder, s.StreamID, seq, observed,
			fmt.Sprintf("policy %s v%d: %s at close; not a unit, not billed", s.pricing.policy.Name(), s.pricing.policy.Version(), r))
	}
}

// cleanEvent cleans, in place, every string of ev that reaches Postgres
// (the meter does not trust that an edge did) and says which were not
// clean, or "".
func cleanEvent(ev *event.Event) string {
	var dirty []string
	clean := func(name string, s *string, max int) {
		if v, changed := event.CleanText(*s, max); changed {
			*s = v
			dirty = append(dirty, name)
		}
	}
	clean("edge_id", &ev.EdgeId, event.MaxIDLen)
	switch b := ev.Body.(type) {
	case *event.Event_Opened:
		o := b.Opened
		clean("service", &o.Service, event.MaxIDLen)
		clean("application", &o.Application, event.MaxIDLen)
		clean("supplier", &o.Supplier, event.MaxIDLen)
		clean("client_addr", &o.ClientAddr, event.MaxIDLen)
		clean("upstream_addr", &o.UpstreamAddr, event.MaxIDLen)
		clean("api_key_id", &o.ApiKeyId, event.MaxIDLen)
	case *event.Event_Message:
		m := b.Message
		clean("method", &m.Method, event.MaxMethodLen)
		clean("rpc_id", &m.RpcId, event.MaxIDLen)
		clean("subscription_id", &m.SubscriptionId, event.MaxIDLen)
	case *event.Event_Closed:
		clean("reason", &b.Closed.Reason, event.MaxIDLen)
	}
	if len(dirty) == 0 {
		return ""
	}
	return "not clean, stored cleaned: " + strings.Join(dirty, ", ")
}
