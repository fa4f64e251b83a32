package event

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// oracle decodes value as Decode does, dropping unknown fields (the
// Decoder skips them).
func oracle(value []byte) (*Event, error) {
	ev := &Event{}
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(value, ev); err != nil {
		return nil, err
	}
	err := Decode(value, &Event{}) // the major and chain checks
	return ev, err
}

func sealed(t testing.TB, evs ...*Event) [][]byte {
	var out [][]byte
	var prev [ChainSize]byte
	for _, ev := range evs {
		v, chain, err := Seal(nil, ev, prev)
		if err != nil {
			t.Fatal(err)
		}
		prev = chain
		out = append(out, v)
	}
	return out
}

func seedEvents(t testing.TB) [][]byte {
	id := make([]byte, 16)
	id[15] = 9
	one, two := uint32(1), uint64(2)
	return sealed(t,
		&Event{StreamId: id, Seq: 1, EdgeId: "edge-1", ObservedAt: 1e18, Body: &Event_Opened{Opened: &StreamOpened{
			Protocol: Protocol_STRATUM_V2, Service: "s", Application: "a", ApiKeyId: "key_1", Supplier: "u", ClientAddr: "c", UpstreamAddr: "up",
			ClientSecurity: Security_TLS, UpstreamSecurity: Security_NOISE, PayloadCapture: -1}}},
		&Event{StreamId: id, Seq: 2, EdgeId: "edge-1", ObservedAt: -5, Body: &Event_Message{Message: &Message{
			Direction: Direction_UPSTREAM_TO_CLIENT, Role: Role_NOTIFICATION, Method: "eth_subscription", BatchSize: 2,
			BatchMethods: []string{"a", ""}, RpcId: `"x"`, SubscriptionId: "0x1", ChannelId: &one, RequestId: &one,
			SequenceNumber: &one, WireSize: 1 << 40, PayloadSize: 7, Payload: []byte("payload"), PayloadSha256: make([]byte, 32),
			Binary: true, Origin: Origin_EDGE, AbsorbedByEdge: true}}},
		&Event{StreamId: id, Seq: 3, Body: &Event_Message{Message: &Message{}}},
		&Event{StreamId: id, Seq: 4, Body: &Event_Closed{Closed: &StreamClosed{Reason: "eof", CloseCode: 1000,
			MessagesToUpstream: 1, BytesToUpstream: 2, MessagesToClient: 3, BytesToClient: 4,
			ForwardedToUpstreamThroughSeq: &two, ForwardedToClientThroughSeq: &two}}},
	)
}

// TestDecoderMatchesProto: the Decoder reads every field of every body
// as proto.Unmarshal does.
func TestDecoderMatchesProto(t *testing.T) {
	var d Decoder
	for i, v := range seedEvents(t) {
		want, err := oracle(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode(v)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("event %d:\n got %v\nwant %v", i, got, want)
		}
	}
}

// TestDecoderMetersInvalidUTF8: a string proto.Unmarshal refuses (invalid
// UTF-8) is read as it is, for the consumer to clean.
func TestDecoderMetersInvalidUTF8(t *testing.T) {
	v := seedEvents(t)[1]
	for i := range len(v) - 16 {
		if string(v[i:i+16]) == "eth_subscription" {
			v[i+3] = 0xff
		}
	}
	if _, err := oracle(v); err == nil {
		t.Fatal("proto.Unmarshal took invalid UTF-8")
	}
	var d Decoder
	ev, err := d.Decode(v)
	if err != nil || ev.GetMessage().Method != "eth\xffsubscription" {
		t.Fatalf("Decode = %v, %v", ev, err)
	}
}

func TestDecoderChecks(t *testing.T) {
	var d Decoder
	future, _ := proto.Marshal(&Event{SchemaMajor: 2, Seq: 1})
	good := seedEvents(t)[0]
	moved := append(append([]byte(nil), good...), 0x18, 0x01) // a field after the chain
	for _, c := range []struct {
		value []byte
		want  error
	}{{future, ErrUnknownMajor}, {nil, ErrNoMajor}, {[]byte{0x08, 0x01}, ErrNoChain}, {moved, ErrNoChain}} {
		if _, err := d.Decode(c.value); !errors.Is(err, c.want) {
			t.Errorf("Decode(%x) = %v, want %v", c.value, err, c.want)
		}
	}
	if _, err := d.Decode([]byte{0x0a, 0x05, 0x01}); err == nil {
		t.Error("a truncated field decoded")
	}
}

// FuzzDecoder: on any input, the Decoder fails where proto.Unmarshal and
// Decode's checks fail (but for invalid UTF-8, which it takes) and
// otherwise yields the same event.
func FuzzDecoder(f *testing.F) {
	for _, v := range seedEvents(f) {
		f.Add(v)
	}
	f.Add([]byte{0x08, 0x01, 0x7a, 0x20})
	f.Fuzz(func(t *testing.T, v []byte) {
		var d Decoder
		got, err := d.Decode(v)
		want, werr := oracle(v)
		switch {
		case werr == nil && err != nil:
			t.Fatalf("Decode failed (%v) where proto decodes %v", err, want)
		case werr == nil && !proto.Equal(got, want):
			t.Fatalf("Decode\n got %v\nwant %v", got, want)
		case werr != nil && err == nil:
			// Only invalid UTF-8, which the Decoder leaves to the consumer,
			// may separate them.
			if !strings.Contains(werr.Error(), "invalid UTF-8") {
				t.Fatalf("Decode took what Decode refuses: %v", werr)
			}
		}
	})
}
