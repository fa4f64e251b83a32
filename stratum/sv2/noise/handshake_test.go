package noise

import (
	"bytes"
	"errors"
	"testing"
)

// runHandshake runs both state machines in memory, applying tamper1 and
// tamper2 to the acts in transit.
func runHandshake(t testing.TB, id testIdentity, tamper1, tamper2 func([]byte)) (act2Result, sessionKeys, *initiatorHandshake, *responderHandshake, error) {
	t.Helper()
	ini, err := newInitiatorHandshake()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := newResponderHandshake(id.static, id.cert)
	if err != nil {
		t.Fatal(err)
	}
	act1 := ini.writeAct1()
	if tamper1 != nil {
		tamper1(act1[:])
	}
	if err := resp.readAct1(act1[:]); err != nil {
		t.Fatalf("readAct1: %v", err)
	}
	act2, rkeys, err := resp.writeAct2()
	if err != nil {
		t.Fatalf("writeAct2: %v", err)
	}
	if tamper2 != nil {
		tamper2(act2[:])
	}
	res, err := ini.readAct2(act2[:])
	return res, rkeys, ini, resp, err
}

func TestHandshakeStateMachines(t *testing.T) {
	id := newTestIdentity(t)
	res, rkeys, ini, resp, err := runHandshake(t, id, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ini.ss.h != resp.ss.h || ini.ss.ck != resp.ss.ck {
		t.Fatal("transcripts differ")
	}
	if res.serverKey != id.static.PublicKey() {
		t.Fatalf("server key %x, want %x", res.serverKey, id.static.PublicKey())
	}
	if res.certificate != id.cert {
		t.Fatalf("certificate %+v, want %+v", res.certificate, id.cert)
	}
	if err := res.certificate.Verify(id.authority.PublicKey(), res.serverKey, nowFor(id.cert), DefaultClockSkew); err != nil {
		t.Fatal(err)
	}
	// k1: initiator → responder; k2: responder → initiator.
	ikeys := res.keys
	for _, dir := range []struct {
		name      string
		send, rcv *cipherState
	}{
		{"initiator to responder", &ikeys.send, &rkeys.recv},
		{"responder to initiator", &rkeys.send, &ikeys.recv},
	} {
		ct, err := dir.send.encryptWithAd(nil, nil, []byte("ciao"))
		if err != nil {
			t.Fatal(err)
		}
		pt, err := dir.rcv.decryptWithAd(nil, nil, ct)
		if err != nil || string(pt) != "ciao" {
			t.Fatalf("%s: %q, %v", dir.name, pt, err)
		}
	}
	// The two directions use different keys.
	a, _ := ikeys.send.encryptWithAd(nil, nil, []byte("same"))
	b, _ := rkeys.send.encryptWithAd(nil, nil, []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("k1 == k2")
	}
}

// Every single-bit flip in either act makes the initiator fail with an
// authentication error: act 1 through the transcript hash; act 2 in the
// ephemeral key, the encrypted static key, its MAC, the encrypted
// certificate or its MAC.
func TestHandshakeRejectsEveryFlippedByte(t *testing.T) {
	id := newTestIdentity(t)
	step := 1
	if testing.Short() {
		step = 7
	}
	part := func(i int) string {
		switch {
		case i < act2StaticOff:
			return "ephemeral key"
		case i < act2StaticOff+EllSwiftSize:
			return "encrypted static key"
		case i < act2CertOff:
			return "static key MAC"
		case i < act2CertOff+CertificateSize:
			return "encrypted certificate"
		}
		return "certificate MAC"
	}
	// Act 1: a fresh responder reads the flipped act 1; the initiator, whose
	// state is copied from the moment act 1 was sent, rejects act 2.
	e, err := generateEllKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newEllKey(id.static.key)
	if err != nil {
		t.Fatal(err)
	}
	ini := newInitiatorHandshakeWithKey(e)
	act1 := ini.writeAct1()
	for i := 0; i < Act1Size; i += step {
		resp := newResponderHandshakeWithKeys(e, s, id.cert) // any ephemeral key will do
		flipped := act1
		flipped[i] ^= 0x80
		if err := resp.readAct1(flipped[:]); err != nil {
			t.Fatal(err)
		}
		act2, _, err := resp.writeAct2()
		if err != nil {
			t.Fatal(err)
		}
		state := *ini
		if _, err := state.readAct2(act2[:]); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("act 1 byte %d flipped: %v", i, err)
		}
	}
	// Act 2: one genuine act 2, flipped at every position.
	resp := newResponderHandshakeWithKeys(e, s, id.cert)
	if err := resp.readAct1(act1[:]); err != nil {
		t.Fatal(err)
	}
	act2, _, err := resp.writeAct2()
	if err != nil {
		t.Fatal(err)
	}
	if state := *ini; func() error { _, err := state.readAct2(act2[:]); return err }() != nil {
		t.Fatal("the genuine act 2 is rejected")
	}
	for i := 0; i < Act2Size; i += step {
		flipped := act2
		flipped[i] ^= 0x01
		state := *ini
		if _, err := state.readAct2(flipped[:]); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("act 2 byte %d (%s) flipped: %v", i, part(i), err)
		}
	}
}

func TestHandshakeWrongLengths(t *testing.T) {
	id := newTestIdentity(t)
	ini, _ := newInitiatorHandshake()
	ini.writeAct1()
	if _, err := ini.readAct2(make([]byte, 170)); err == nil {
		t.Fatal("accepted a 170-byte act 2")
	}
	resp, _ := newResponderHandshake(id.static, id.cert)
	if err := resp.readAct1(make([]byte, 63)); err == nil {
		t.Fatal("accepted a 63-byte act 1")
	}
	if Act1Size != 64 || Act2Size != 234 {
		t.Fatalf("act sizes %d, %d", Act1Size, Act2Size)
	}
}
