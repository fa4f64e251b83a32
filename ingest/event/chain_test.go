package event

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestSealDecodeChained(t *testing.T) {
	var prev [ChainSize]byte
	events := []*Event{
		{StreamId: make([]byte, 16), Seq: 1, Body: &Event_Opened{Opened: &StreamOpened{Protocol: Protocol_WEBSOCKET_JSONRPC, Service: "eth"}}},
		{StreamId: make([]byte, 16), Seq: 2, Body: &Event_Message{Message: &Message{Direction: Direction_CLIENT_TO_UPSTREAM, Role: Role_REQUEST, Method: "eth_chainId", WireSize: 40}}},
		{StreamId: make([]byte, 16), Seq: 3, Body: &Event_Closed{Closed: &StreamClosed{Reason: "eof", MessagesToUpstream: 1, BytesToUpstream: 40}}},
	}
	var values [][]byte
	for _, ev := range events {
		v, chain, err := Seal(nil, ev, prev)
		if err != nil {
			t.Fatal(err)
		}
		var got Event
		if err := Decode(v, &got); err != nil {
			t.Fatalf("seq %d: %v", ev.Seq, err)
		}
		if !Chained(v, prev) {
			t.Fatalf("seq %d: chain does not follow its predecessor", ev.Seq)
		}
		if [ChainSize]byte(got.Chain) != chain || got.Seq != ev.Seq {
			t.Fatalf("seq %d: decoded chain or seq differ", ev.Seq)
		}
		if !proto.Equal(&got, ev) {
			t.Fatalf("seq %d: decoded event differs from sealed one", ev.Seq)
		}
		values = append(values, v)
		prev = chain
	}
	// Reordering, dropping or changing an event breaks the chain.
	var zero [ChainSize]byte
	if Chained(values[1], zero) {
		t.Fatal("seq 2 verified against the chain start")
	}
	changed := append([]byte(nil), values[1]...)
	changed[5] ^= 1
	var first Event
	if err := Decode(values[0], &first); err != nil {
		t.Fatal(err)
	}
	if Chained(changed, [ChainSize]byte(first.Chain)) {
		t.Fatal("a changed event still verified")
	}
}

func TestDecodeRejects(t *testing.T) {
	ev := &Event{Seq: 1, Body: &Event_Message{Message: &Message{}}}
	v, _, err := Seal(nil, ev, [ChainSize]byte{})
	if err != nil {
		t.Fatal(err)
	}
	// A future major version.
	future := &Event{SchemaMajor: 2, Seq: 1}
	fv, err := proto.Marshal(future)
	if err != nil {
		t.Fatal(err)
	}
	if err := Decode(fv, new(Event)); !errors.Is(err, ErrUnknownMajor) {
		t.Fatalf("major 2: got %v, want ErrUnknownMajor", err)
	}
	// No chain trailer.
	plain, err := proto.Marshal(&Event{SchemaMajor: 1, Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := Decode(plain, new(Event)); !errors.Is(err, ErrNoChain) {
		t.Fatalf("no chain: got %v, want ErrNoChain", err)
	}
	// Garbage.
	if err := Decode([]byte{0xff, 0xff, 0xff}, new(Event)); err == nil {
		t.Fatal("garbage decoded")
	}
	if err := Decode(v, new(Event)); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSeal(b *testing.B) {
	ev := &Event{StreamId: make([]byte, 16), EdgeId: "edge-1", ObservedAt: 1, Body: &Event_Message{Message: &Message{
		Direction: Direction_UPSTREAM_TO_CLIENT, Role: Role_NOTIFICATION, Method: "eth_subscription",
		SubscriptionId: "0x9cef478923ff08bf67fde6c64013158d", WireSize: 300, PayloadSize: 300, Payload: make([]byte, 300), PayloadSha256: make([]byte, 32)}}}
	var buf []byte
	var prev [ChainSize]byte
	b.ReportAllocs()
	for b.Loop() {
		ev.Seq++
		var err error
		buf, prev, err = Seal(buf[:0], ev, prev)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeMajor: only a major version this build does not know is
// ErrUnknownMajor; an empty value or one without a major is malformed.
func TestDecodeMajor(t *testing.T) {
	future, _ := proto.Marshal(&Event{SchemaMajor: 2, Seq: 1})
	none, _ := proto.Marshal(&Event{Seq: 1, EdgeId: "e"})
	for _, c := range []struct {
		value []byte
		want  error
	}{{future, ErrUnknownMajor}, {nil, ErrNoMajor}, {[]byte{}, ErrNoMajor}, {none, ErrNoMajor}} {
		var ev Event
		if err := Decode(c.value, &ev); !errors.Is(err, c.want) {
			t.Errorf("Decode(%x) = %v, want %v", c.value, err, c.want)
		}
	}
}
