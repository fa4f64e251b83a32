package sv2

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestEveryRegisteredMessageHasASample(t *testing.T) {
	have := map[Kind]bool{}
	for _, m := range sampleMessages() {
		if have[m.Kind()] {
			t.Errorf("two samples for %v", m.Kind())
		}
		have[m.Kind()] = true
	}
	infos := Messages()
	if len(infos) != 44 {
		t.Errorf("registry has %d messages, want 44 (5 common, 21 mining, 8 JD, 7 TD, 3 negotiation)", len(infos))
	}
	for _, info := range infos {
		if !have[info.Kind] {
			t.Errorf("no sample for %s (%v)", info.Name, info.Kind)
		}
	}
}

func TestRoundTripEveryMessage(t *testing.T) {
	for _, m := range sampleMessages() {
		info, ok := Lookup(m.Kind())
		if !ok {
			t.Fatalf("%T not registered", m)
		}
		t.Run(info.Name, func(t *testing.T) {
			prefix := []byte("prefix")
			enc, err := m.Encode(append([]byte(nil), prefix...))
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.HasPrefix(enc, prefix) {
				t.Fatalf("Encode did not append to dst")
			}
			payload := enc[len(prefix):]
			got := info.New()
			if err := got.Decode(payload); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("decoded %+v\nwant    %+v", got, m)
			}
			again, err := got.Encode(nil)
			if err != nil || !bytes.Equal(again, payload) {
				t.Fatalf("re-encode = %x, %v; want %x", again, err, payload)
			}
			// Decoding into a used message must replace, not merge.
			if err := got.Decode(payload); err != nil || !reflect.DeepEqual(got, m) {
				t.Fatalf("second Decode into the same value: %v, %+v", err, got)
			}
			// The decoded message must not alias the payload.
			for i := range payload {
				payload[i] ^= 0xff
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("decoded message changed with its payload buffer")
			}
			for i := range payload {
				payload[i] ^= 0xff
			}
		})
	}
}

func TestDecodeRejectsTruncatedAndTrailing(t *testing.T) {
	for _, m := range sampleMessages() {
		info, _ := Lookup(m.Kind())
		if se, ok := m.(*SubmitSharesExtended); ok {
			c := *se
			c.TLVs = nil // a cut at a TLV boundary would be a valid message
			m = &c
		}
		payload, err := m.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(payload); n++ {
			err := info.New().Decode(payload[:n])
			var short *ShortBufferError
			if !errors.As(err, &short) {
				t.Fatalf("%s cut to %d of %d bytes: err = %v, want *ShortBufferError", info.Name, n, len(payload), err)
			}
		}
		err = info.New().Decode(append(payload, 0))
		if m.Kind().Type == MsgSubmitSharesExtended && m.Kind().Ext == ExtCore {
			if err == nil {
				t.Fatalf("%s with a 1-byte TLV tail decoded without error", info.Name)
			}
			continue
		}
		var trailing *TrailingDataError
		if !errors.As(err, &trailing) || trailing.N != 1 || trailing.Offset != len(payload) {
			t.Fatalf("%s with a trailing byte: err = %v, want *TrailingDataError{Offset:%d,N:1}", info.Name, err, len(payload))
		}
	}
}

func TestEncodeRejectsOversizedFields(t *testing.T) {
	long := string(make([]byte, 256))
	cases := []struct {
		m    Message
		typ  string
		size int
	}{
		{&OpenStandardMiningChannel{UserIdentity: long}, "STR0_255", 256},
		{&SetExtranoncePrefix{ExtranoncePrefix: make(Bytes, 33)}, "B0_32", 33},
		{&SetCustomMiningJob{MiningJobToken: make(Bytes, 256)}, "B0_255", 256},
		{&NewExtendedMiningJob{CoinbaseTxPrefix: make(Bytes, 65536)}, "B0_64K", 65536},
		{&NewExtendedMiningJob{MerklePath: make([]U256, 256)}, "SEQ0_255", 256},
		{&SetGroupChannel{ChannelIDs: make([]uint32, 65536)}, "SEQ0_64K", 65536},
		{&SubmitSharesExtended{TLVs: []TLV{{Value: make(Bytes, 65536)}}}, "TLV", 65536},
	}
	for _, c := range cases {
		dst := []byte{1, 2, 3}
		out, err := c.m.Encode(dst)
		var le *LengthError
		if !errors.As(err, &le) || le.Type != c.typ || le.Length != c.size {
			t.Errorf("%T: err = %v, want *LengthError{%s, %d}", c.m, err, c.typ, c.size)
		}
		if !bytes.Equal(out, []byte{1, 2, 3}) {
			t.Errorf("%T: failed Encode returned %x, want dst unchanged", c.m, out)
		}
	}
}

func TestRawMessageRoundTrip(t *testing.T) {
	h := Header{ExtensionType: 0xc001, MsgType: 0x07}
	payload := []byte{42, 0, 0, 0, 'x'}
	m, err := ParseMessage(h, payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := m.(*RawMessage)
	if !ok {
		t.Fatalf("ParseMessage of unknown type = %T, want *RawMessage", m)
	}
	frame, err := AppendMessage(nil, raw)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x01, 0xc0, 0x07, 5, 0, 0, 42, 0, 0, 0, 'x'}
	if !bytes.Equal(frame, want) {
		t.Fatalf("AppendMessage(raw) = %x, want %x", frame, want)
	}
	payload[0] = 0
	if raw.Payload[0] != 42 {
		t.Fatal("RawMessage aliases the payload it was decoded from")
	}
}
