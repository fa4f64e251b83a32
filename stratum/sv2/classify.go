package sv2

import (
	"encoding/binary"
	"fmt"
)

// KeySet is the set of correlation keys a Classification carries.
type KeySet uint8

// Correlation keys.
const (
	KeyRequestID          KeySet = 1 << iota // request_id (U32, or U16 for RequestExtensions*)
	KeyChannelID                             // channel_id (group_channel_id for SetGroupChannel)
	KeySequenceNumber                        // sequence_number of one submit
	KeyLastSequenceNumber                    // last_sequence_number of SubmitShares.Success
	KeyJobID                                 // job_id
	KeyTemplateID                            // template_id (Template Distribution)
)

// Classification is what metering needs to know about a frame without
// decoding all of it.
type Classification struct {
	Kind       Kind
	Name       string // spec name, or "Unknown(ext=0x....,type=0x..)"
	Known      bool   // whether the registry knows Kind
	Protocol   Protocol
	ChannelMsg bool      // channel_msg bit of the header
	Direction  Direction // directions the message may travel in; 0 if unknown
	Role       Role

	Has                KeySet // which of the keys below are set
	RequestID          uint32
	ChannelID          uint32
	SequenceNumber     uint32
	LastSequenceNumber uint32 // SubmitShares.Success acknowledges every submit up to it
	JobID              uint32
	TemplateID         uint64

	// Truncated reports that the payload ended before a key field.
	Truncated bool
}

// Acknowledges reports whether c is a SubmitShares.Success that
// acknowledges the submit (channelID, seq): same channel and seq <=
// last_sequence_number. Sequence number wrap-around is not handled.
func (c *Classification) Acknowledges(channelID, seq uint32) bool {
	return c.Known && c.Kind == (Kind{Ext: ExtCore, Type: MsgSubmitSharesSuccess}) &&
		c.Has&KeyChannelID != 0 && c.Has&KeyLastSequenceNumber != 0 &&
		c.ChannelID == channelID && seq <= c.LastSequenceNumber
}

// keyOp is one step of a message's key layout: read or skip the next
// field of the payload.
type keyOp uint8

const (
	opChannel   keyOp = iota + 1 // U32 channel_id
	opRequest32                  // U32 request_id
	opRequest16                  // U16 request_id
	opSeq                        // U32 sequence_number
	opLastSeq                    // U32 last_sequence_number
	opJob                        // U32 job_id
	opTemplate                   // U64 template_id
	opSkipStr                    // skip a STR0_255
)

// Classify names the frame and extracts its correlation keys, reading
// only the leading payload fields that hold them. It never fails: an
// unknown type gets an "Unknown(...)" name, RoleOther and, when the
// channel_msg bit is set, the channel_id of the first four payload
// bytes; a payload too short for a key sets Truncated.
func Classify(h Header, payload []byte) Classification {
	c := Classification{Kind: h.Kind(), ChannelMsg: h.ChannelMsg()}
	info, ok := registry[c.Kind]
	if !ok {
		c.Name = fmt.Sprintf("Unknown(ext=0x%04x,type=0x%02x)", c.Kind.Ext, c.Kind.Type)
		c.Protocol = ProtocolUnknown
		c.Role = RoleOther
		if c.ChannelMsg {
			if len(payload) >= 4 {
				c.ChannelID = binary.LittleEndian.Uint32(payload)
				c.Has |= KeyChannelID
			} else {
				c.Truncated = true
			}
		}
		return c
	}
	c.Known = true
	c.Name = info.Name
	c.Protocol = info.Protocol
	c.Direction = info.Direction
	c.Role = info.Role
	off := 0
	for _, op := range info.keys {
		size := 4
		switch op {
		case opRequest16:
			size = 2
		case opTemplate:
			size = 8
		case opSkipStr:
			if off < len(payload) {
				size = 1 + int(payload[off])
			} else {
				size = 1
			}
		}
		if len(payload)-off < size {
			c.Truncated = true
			break
		}
		b := payload[off : off+size]
		off += size
		switch op {
		case opChannel:
			c.ChannelID, c.Has = binary.LittleEndian.Uint32(b), c.Has|KeyChannelID
		case opRequest32:
			c.RequestID, c.Has = binary.LittleEndian.Uint32(b), c.Has|KeyRequestID
		case opRequest16:
			c.RequestID, c.Has = uint32(binary.LittleEndian.Uint16(b)), c.Has|KeyRequestID
		case opSeq:
			c.SequenceNumber, c.Has = binary.LittleEndian.Uint32(b), c.Has|KeySequenceNumber
		case opLastSeq:
			c.LastSequenceNumber, c.Has = binary.LittleEndian.Uint32(b), c.Has|KeyLastSequenceNumber
		case opJob:
			c.JobID, c.Has = binary.LittleEndian.Uint32(b), c.Has|KeyJobID
		case opTemplate:
			c.TemplateID, c.Has = binary.LittleEndian.Uint64(b), c.Has|KeyTemplateID
		}
	}
	return c
}
