package sv2

import (
	"reflect"
	"testing"
)

func TestClassifyFixtures(t *testing.T) {
	want := map[string]Classification{
		"SetupConnection":       {Role: RoleRequest, Direction: ClientToServer, Protocol: ProtocolCommon},
		"SetupConnection.Error": {Role: RoleError, Direction: ServerToClient, Protocol: ProtocolCommon},
		"OpenStandardMiningChannel": {Role: RoleRequest, Direction: ClientToServer, Protocol: ProtocolMining,
			Has: KeyRequestID, RequestID: 1},
		"OpenStandardMiningChannel.Success": {Role: RoleResponse, Direction: ServerToClient, Protocol: ProtocolMining,
			Has: KeyRequestID | KeyChannelID, RequestID: 1, ChannelID: 42},
		"NewMiningJob": {Role: RoleNotification, Direction: ServerToClient, Protocol: ProtocolMining, ChannelMsg: true,
			Has: KeyChannelID | KeyJobID, ChannelID: 42, JobID: 3},
		"SubmitSharesStandard": {Role: RoleRequest, Direction: ClientToServer, Protocol: ProtocolMining, ChannelMsg: true,
			Has: KeyChannelID | KeySequenceNumber | KeyJobID, ChannelID: 42, SequenceNumber: 7, JobID: 3},
		"SubmitShares.Success": {Role: RoleResponse, Direction: ServerToClient, Protocol: ProtocolMining, ChannelMsg: true,
			Has: KeyChannelID | KeyLastSequenceNumber, ChannelID: 42, LastSequenceNumber: 8},
		"SubmitShares.Error": {Role: RoleError, Direction: ServerToClient, Protocol: ProtocolMining, ChannelMsg: true,
			Has: KeyChannelID | KeySequenceNumber, ChannelID: 42, SequenceNumber: 9},
		"RequestExtensions": {Role: RoleRequest, Direction: ClientToServer, Protocol: ProtocolExtensionsNegotiation,
			Has: KeyRequestID, RequestID: 5},
		"Unknown(ext=0x4001,type=0x07)": {Role: RoleOther, Protocol: ProtocolUnknown, ChannelMsg: true,
			Has: KeyChannelID, ChannelID: 42},
	}
	seen := 0
	for _, fx := range loadFixtures(t) {
		w, ok := want[fx.name]
		if !ok {
			continue
		}
		seen++
		h, p, _, _ := SplitFrame(fx.frame, 0)
		got := Classify(h, p)
		w.Kind, w.Name, w.Known = h.Kind(), fx.name, w.Protocol != ProtocolUnknown
		if got != w {
			t.Errorf("%s:\n got %+v\nwant %+v", fx.name, got, w)
		}
	}
	if seen != len(want) {
		t.Fatalf("checked %d fixtures, want %d", seen, len(want))
	}
}

// TestClassifyKeysMatchDecodedFields checks, for every message type, that
// the keys Classify reads from the leading bytes equal the decoded fields.
func TestClassifyKeysMatchDecodedFields(t *testing.T) {
	for _, m := range sampleMessages() {
		payload, _ := m.Encode(nil)
		info, _ := Lookup(m.Kind())
		h := Header{ExtensionType: m.Kind().Ext, MsgType: m.Kind().Type, MsgLength: uint32(len(payload))}
		c := Classify(h, payload)
		if c.Name != info.Name || c.Truncated || !c.Known {
			t.Fatalf("%s: %+v", info.Name, c)
		}
		checkKeys(t, m, c)
	}
}

// checkKeys compares c's keys with m's fields of the same meaning: a key
// must be set exactly when the message has the field.
func checkKeys(t *testing.T, m Message, c Classification) {
	t.Helper()
	v := reflect.ValueOf(m).Elem()
	field := func(names ...string) (uint64, bool) {
		for _, n := range names {
			if f := v.FieldByName(n); f.IsValid() {
				return f.Uint(), true
			}
		}
		return 0, false
	}
	check := func(key KeySet, got uint64, names ...string) {
		want, has := field(names...)
		if has != (c.Has&key != 0) || (has && got != want) {
			t.Errorf("%T key %v: classified %d (set %v), field %v = %d", m, names, got, c.Has&key != 0, has, want)
		}
	}
	check(KeyRequestID, uint64(c.RequestID), "RequestID")
	check(KeyChannelID, uint64(c.ChannelID), "ChannelID", "GroupChannelID")
	check(KeySequenceNumber, uint64(c.SequenceNumber), "SequenceNumber")
	check(KeyLastSequenceNumber, uint64(c.LastSequenceNumber), "LastSequenceNumber")
	check(KeyJobID, uint64(c.JobID), "JobID")
	check(KeyTemplateID, c.TemplateID, "TemplateID")
}

func TestClassifyTruncatedAndUnknown(t *testing.T) {
	h := Header{ExtensionType: ChannelMsgBit, MsgType: MsgSubmitSharesStandard}
	c := Classify(h, []byte{1, 0, 0, 0, 2, 0})
	if !c.Truncated || c.Has != KeyChannelID || c.ChannelID != 1 || c.Name != "SubmitSharesStandard" {
		t.Fatalf("truncated submit: %+v", c)
	}
	// AllocateMiningJobToken: request_id follows a STR0_255 whose length lies.
	c = Classify(Header{MsgType: MsgAllocateMiningJobToken}, []byte{200, 'a'})
	if !c.Truncated || c.Has != 0 {
		t.Fatalf("lying string length: %+v", c)
	}
	c = Classify(Header{MsgType: MsgAllocateMiningJobToken}, []byte{1, 'a', 9, 0, 0, 0})
	if c.Truncated || c.Has != KeyRequestID || c.RequestID != 9 {
		t.Fatalf("AllocateMiningJobToken: %+v", c)
	}
	c = Classify(Header{ExtensionType: 0x4abc, MsgType: 0x99}, nil)
	if c.Known || c.Name != "Unknown(ext=0x4abc,type=0x99)" || c.Role != RoleOther || c.Has != 0 || c.Truncated {
		t.Fatalf("unknown, no channel: %+v", c)
	}
	c = Classify(Header{ExtensionType: 0xcabc, MsgType: 0x99}, []byte{1, 2})
	if !c.Truncated || c.Has != 0 {
		t.Fatalf("unknown channel message with 2 bytes: %+v", c)
	}
	// The channel_msg bit is ignored in the lookup, as the spec says.
	c = Classify(Header{ExtensionType: ChannelMsgBit, MsgType: MsgSetupConnection}, nil)
	if c.Name != "SetupConnection" || !c.ChannelMsg {
		t.Fatalf("SetupConnection with channel bit: %+v", c)
	}
}

func TestAcknowledges(t *testing.T) {
	p, _ := (&SubmitSharesSuccess{ChannelID: 4, LastSequenceNumber: 10}).Encode(nil)
	c := Classify(Header{ExtensionType: ChannelMsgBit, MsgType: MsgSubmitSharesSuccess}, p)
	for _, tc := range []struct {
		ch, seq uint32
		want    bool
	}{{4, 0, true}, {4, 10, true}, {4, 11, false}, {5, 3, false}} {
		if got := c.Acknowledges(tc.ch, tc.seq); got != tc.want {
			t.Errorf("Acknowledges(%d, %d) = %v, want %v", tc.ch, tc.seq, got, tc.want)
		}
	}
	p, _ = (&SubmitSharesError{ChannelID: 4, SequenceNumber: 1}).Encode(nil)
	c = Classify(Header{ExtensionType: ChannelMsgBit, MsgType: MsgSubmitSharesError}, p)
	if c.Acknowledges(4, 1) {
		t.Error("SubmitShares.Error acknowledges a submit")
	}
}

func TestClassifyKnownFrameDoesNotAllocate(t *testing.T) {
	p, _ := (&SubmitSharesStandard{ChannelID: 4, SequenceNumber: 10}).Encode(nil)
	h := Header{ExtensionType: ChannelMsgBit, MsgType: MsgSubmitSharesStandard, MsgLength: uint32(len(p))}
	if n := testing.AllocsPerRun(100, func() { Classify(h, p) }); n != 0 {
		t.Fatalf("Classify allocates %.1f times", n)
	}
}

func TestRegistryMetadata(t *testing.T) {
	for _, info := range Messages() {
		// Job Declaration and Template Distribution never set channel_msg;
		// every core channel message starts with channel_id.
		switch info.Protocol {
		case ProtocolJobDeclaration, ProtocolTemplateDistribution, ProtocolExtensionsNegotiation:
			if info.ChannelMsg {
				t.Errorf("%s has channel_msg set", info.Name)
			}
		}
		if info.ChannelMsg && (len(info.keys) == 0 || info.keys[0] != opChannel) {
			t.Errorf("%s is a channel message but its keys do not start with channel_id", info.Name)
		}
		isError := len(info.Name) > 6 && info.Name[len(info.Name)-6:] == ".Error"
		if isError != (info.Role == RoleError) {
			t.Errorf("%s has role %v", info.Name, info.Role)
		}
		if info.Direction == 0 {
			t.Errorf("%s has no direction", info.Name)
		}
	}
	if info, _ := Lookup(Kind{Ext: ExtCore, Type: MsgCloseChannel}); info.Direction != BothDirections {
		t.Errorf("CloseChannel direction = %v", info.Direction)
	}
}
