package event

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// A Decoder decodes record values into one Event it reuses, for a
// consumer that reads millions of them: fields are read one by one without
// reflection, and bytes fields alias the value instead of copying it.
//
// It makes the same checks as Decode (the schema major, the chain field
// appended last) but one: it does not require strings to be valid UTF-8,
// as proto.Unmarshal does. A consumer cleans them (CleanText), so that an
// event with a tampered string is metered rather than lost. A Decoder is
// not safe for concurrent use.
type Decoder struct {
	ev   Event
	body Event_Message
	msg  Message
	// inMessage: the Message body was begun; a repeat merges into it.
	inMessage bool
	// The optional Sv2 fields point here.
	channelID, requestID, sequenceNumber uint32
	// The last edge id and method decoded: most events repeat them.
	edge, method string
}

// Decode parses value into the Decoder's Event and returns it; the Event,
// and the slices in it, are valid until the next call and while value is
// not changed.
func (d *Decoder) Decode(value []byte) (*Event, error) {
	ev := &d.ev
	ev.Reset()
	d.inMessage = false
	if err := fields(value, d.envelopeVarint, d.envelopeBytes); err != nil {
		return nil, err
	}
	switch ev.SchemaMajor {
	case SchemaMajor:
	case 0:
		return nil, ErrNoMajor
	default:
		return nil, fmt.Errorf("%w: %d (this build knows %d)", ErrUnknownMajor, ev.SchemaMajor, SchemaMajor)
	}
	if len(value) < chainTrailerLen || value[len(value)-chainTrailerLen] != chainTag ||
		value[len(value)-chainTrailerLen+1] != ChainSize || len(ev.Chain) != ChainSize ||
		&ev.Chain[0] != &value[len(value)-ChainSize] {
		return nil, ErrNoChain
	}
	return ev, nil
}

func (d *Decoder) envelopeVarint(num protowire.Number, v uint64) {
	ev := &d.ev
	switch num {
	case FieldSchemaMajor:
		ev.SchemaMajor = uint32(v)
	case FieldSeq:
		ev.Seq = v
	case FieldObservedAt:
		ev.ObservedAt = int64(v)
	}
}

func (d *Decoder) envelopeBytes(num protowire.Number, raw []byte) error {
	ev := &d.ev
	switch num {
	case FieldStreamID:
		ev.StreamId = raw
	case FieldEdgeID:
		d.edge = reuse(d.edge, raw)
		ev.EdgeId = d.edge
	case FieldChain:
		ev.Chain = raw
	case FieldMessage:
		if !d.inMessage {
			d.msg.Reset()
			d.body.Message, d.inMessage = &d.msg, true
		}
		ev.Body = &d.body
		return fields(raw, d.messageVarint, d.messageBytes)
	case FieldOpened:
		o, ok := ev.Body.(*Event_Opened)
		if !ok {
			o = &Event_Opened{Opened: &StreamOpened{}}
		}
		ev.Body, d.inMessage = o, false
		return fields(raw, o.Opened.varint, o.Opened.bytes)
	case FieldClosed:
		c, ok := ev.Body.(*Event_Closed)
		if !ok {
			c = &Event_Closed{Closed: &StreamClosed{}}
		}
		ev.Body, d.inMessage = c, false
		return fields(raw, c.Closed.varint, c.Closed.bytes)
	}
	return nil
}

func (d *Decoder) messageVarint(num protowire.Number, v uint64) {
	m := &d.msg
	switch num {
	case 1:
		m.Direction = Direction(int32(v))
	case 2:
		m.Role = Role(int32(v))
	case 4:
		m.BatchSize = uint32(v)
	case 8:
		d.channelID, m.ChannelId = uint32(v), &d.channelID
	case 9:
		d.requestID, m.RequestId = uint32(v), &d.requestID
	case 10:
		d.sequenceNumber, m.SequenceNumber = uint32(v), &d.sequenceNumber
	case 11:
		m.WireSize = v
	case 12:
		m.PayloadSize = v
	case 15:
		m.Binary = v != 0
	case 16:
		m.Origin = Origin(int32(v))
	case 17:
		m.AbsorbedByEdge = v != 0
	}
}

func (d *Decoder) messageBytes(num protowire.Number, raw []byte) error {
	m := &d.msg
	switch num {
	case 3:
		d.method = reuse(d.method, raw)
		m.Method = d.method
	case 5:
		m.BatchMethods = append(m.BatchMethods, string(raw))
	case 6:
		m.RpcId = string(raw)
	case 7:
		m.SubscriptionId = string(raw)
	case 13:
		m.Payload = raw
	case 14:
		m.PayloadSha256 = raw
	}
	return nil
}

func (o *StreamOpened) varint(num protowire.Number, v uint64) {
	switch num {
	case 1:
		o.Protocol = Protocol(int32(v))
	case 7:
		o.ClientSecurity = Security(int32(v))
	case 8:
		o.UpstreamSecurity = Security(int32(v))
	case 9:
		o.PayloadCapture = int64(v)
	}
}

func (o *StreamOpened) bytes(num protowire.Number, raw []byte) error {
	switch num {
	case 2:
		o.Service = string(raw)
	case 3:
		o.Application = string(raw)
	case 4:
		o.Supplier = string(raw)
	case 5:
		o.ClientAddr = string(raw)
	case 6:
		o.UpstreamAddr = string(raw)
	case 10:
		o.ApiKeyId = string(raw)
	}
	return nil
}

func (c *StreamClosed) varint(num protowire.Number, v uint64) {
	switch num {
	case 2:
		c.CloseCode = int32(v)
	case 3:
		c.MessagesToUpstream = v
	case 4:
		c.BytesToUpstream = v
	case 5:
		c.MessagesToClient = v
	case 6:
		c.BytesToClient = v
	case 7:
		c.ForwardedToUpstreamThroughSeq = &v
	case 8:
		c.ForwardedToClientThroughSeq = &v
	}
}

func (c *StreamClosed) bytes(num protowire.Number, raw []byte) error {
	if num == 1 {
		c.Reason = string(raw)
	}
	return nil
}

// fields reads the fields of a message, handing each varint and each
// length-delimited field to the given setters (which ignore numbers they
// do not know) and skipping the rest, as protobuf skips unknown fields.
func fields(b []byte, varint func(protowire.Number, uint64), bytes func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return decodeErr(n)
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			var v uint64
			if v, n = protowire.ConsumeVarint(b); n >= 0 {
				varint(num, v)
			}
		case protowire.BytesType:
			var raw []byte
			if raw, n = protowire.ConsumeBytes(b); n >= 0 {
				if err := bytes(num, raw); err != nil {
					return err
				}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return decodeErr(n)
		}
		b = b[n:]
	}
	return nil
}

// reuse returns raw as a string, reusing last when it holds the same bytes
// (an edge id, a method: few distinct values) to save an allocation.
func reuse(last string, raw []byte) string {
	if last == string(raw) {
		return last
	}
	return string(raw)
}

func decodeErr(n int) error {
	return fmt.Errorf("event: unmarshal: %w", protowire.ParseError(n))
}
