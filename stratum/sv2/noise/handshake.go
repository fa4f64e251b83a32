package noise

import (
	"fmt"
)

const (
	// Act1Size is the size of handshake act 1, "-> e": the initiator's
	// ElligatorSwift encoded ephemeral key.
	Act1Size = EllSwiftSize

	// Act2Size is the size of handshake act 2,
	// "<- e, ee, s, es, SIGNATURE_NOISE_MESSAGE": the responder's ephemeral
	// key, its encrypted static key and the encrypted certificate.
	// (The specification's "170 bytes" predates ElligatorSwift.)
	Act2Size = EllSwiftSize + (EllSwiftSize + MACSize) + (CertificateSize + MACSize)
)

// Offsets of the parts of act 2.
const (
	act2StaticOff = EllSwiftSize
	act2CertOff   = act2StaticOff + EllSwiftSize + MACSize
)

// sessionKeys are the transport cipher states of one side.
type sessionKeys struct {
	send, recv cipherState
}

// initiatorHandshake runs the initiator's side of Noise NX.
type initiatorHandshake struct {
	ss symmetricState
	e  ellKey
}

// newInitiatorHandshake starts a handshake with a fresh ephemeral key.
func newInitiatorHandshake() (*initiatorHandshake, error) {
	e, err := generateEllKey()
	if err != nil {
		return nil, err
	}
	return newInitiatorHandshakeWithKey(e), nil
}

func newInitiatorHandshakeWithKey(e ellKey) *initiatorHandshake {
	hs := &initiatorHandshake{e: e}
	hs.ss.initialize()
	return hs
}

// writeAct1 returns act 1 and mixes it into the handshake hash: MixHash(e),
// then EncryptAndHash of an empty payload (no key yet, so MixHash("")).
func (hs *initiatorHandshake) writeAct1() [Act1Size]byte {
	hs.ss.mixHash(hs.e.enc[:])
	hs.ss.mixHash(nil)
	return hs.e.enc
}

// act2Result is what the initiator learns from act 2.
type act2Result struct {
	serverKey   PublicKey // x-only static key of the responder
	certificate Certificate
	keys        sessionKeys
}

// readAct2 processes act 2. It authenticates the responder's static key and
// certificate against the transcript but leaves certificate verification to
// the caller.
func (hs *initiatorHandshake) readAct2(msg []byte) (act2Result, error) {
	if len(msg) != Act2Size {
		return act2Result{}, fmt.Errorf("noise: handshake act 2 of %d bytes, want %d", len(msg), Act2Size)
	}
	re := [EllSwiftSize]byte(msg[:EllSwiftSize])
	hs.ss.mixHash(re[:])
	ee, err := v2ECDH(hs.e.priv, re, hs.e.enc, true)
	if err != nil {
		return act2Result{}, fmt.Errorf("noise: handshake act 2: ee: %w", err)
	}
	hs.ss.mixKey(ee[:])

	var buf [CertificateSize]byte
	static, err := hs.ss.decryptAndHash(buf[:0], msg[act2StaticOff:act2CertOff])
	if err != nil {
		return act2Result{}, fmt.Errorf("noise: handshake act 2: static key: %w", err)
	}
	rs := [EllSwiftSize]byte(static)
	es, err := v2ECDH(hs.e.priv, rs, hs.e.enc, true)
	if err != nil {
		return act2Result{}, fmt.Errorf("noise: handshake act 2: es: %w", err)
	}
	hs.ss.mixKey(es[:])

	plain, err := hs.ss.decryptAndHash(buf[:0], msg[act2CertOff:])
	if err != nil {
		return act2Result{}, fmt.Errorf("noise: handshake act 2: certificate: %w", err)
	}
	cert, err := ParseCertificate(plain)
	if err != nil {
		return act2Result{}, fmt.Errorf("noise: handshake act 2: %w", err)
	}
	serverKey, err := ellSwiftXOnly(rs)
	if err != nil {
		return act2Result{}, fmt.Errorf("noise: handshake act 2: static key: %w", err)
	}
	c1, c2 := hs.ss.split()
	return act2Result{
		serverKey:   serverKey,
		certificate: cert,
		keys:        sessionKeys{send: c1, recv: c2},
	}, nil
}

// responderHandshake runs the responder's side of Noise NX.
type responderHandshake struct {
	ss   symmetricState
	e    ellKey
	s    ellKey
	cert Certificate
	re   [EllSwiftSize]byte
}

// newResponderHandshake starts a handshake with a fresh ephemeral key, the
// static key static and the certificate cert vouching for it.
func newResponderHandshake(static *PrivateKey, cert Certificate) (*responderHandshake, error) {
	e, err := generateEllKey()
	if err != nil {
		return nil, err
	}
	s, err := newEllKey(static.key)
	if err != nil {
		return nil, err
	}
	return newResponderHandshakeWithKeys(e, s, cert), nil
}

func newResponderHandshakeWithKeys(e, s ellKey, cert Certificate) *responderHandshake {
	hs := &responderHandshake{e: e, s: s, cert: cert}
	hs.ss.initialize()
	return hs
}

// readAct1 processes act 1. Any 64 bytes are a valid ElligatorSwift
// encoding, so act 1 cannot fail on its own; its integrity is checked by the
// initiator through the transcript hash.
func (hs *responderHandshake) readAct1(msg []byte) error {
	if len(msg) != Act1Size {
		return fmt.Errorf("noise: handshake act 1 of %d bytes, want %d", len(msg), Act1Size)
	}
	hs.re = [EllSwiftSize]byte(msg)
	hs.ss.mixHash(hs.re[:])
	hs.ss.mixHash(nil) // DecryptAndHash of the empty payload, no key yet
	return nil
}

// writeAct2 builds act 2 and returns it with the responder's transport keys.
func (hs *responderHandshake) writeAct2() ([Act2Size]byte, sessionKeys, error) {
	var out [Act2Size]byte
	buf := out[:0]
	buf = append(buf, hs.e.enc[:]...)
	hs.ss.mixHash(hs.e.enc[:])
	ee, err := v2ECDH(hs.e.priv, hs.re, hs.e.enc, false)
	if err != nil {
		return out, sessionKeys{}, fmt.Errorf("noise: handshake act 2: ee: %w", err)
	}
	hs.ss.mixKey(ee[:])
	if buf, err = hs.ss.encryptAndHash(buf, hs.s.enc[:]); err != nil {
		return out, sessionKeys{}, fmt.Errorf("noise: handshake act 2: static key: %w", err)
	}
	es, err := v2ECDH(hs.s.priv, hs.re, hs.s.enc, false)
	if err != nil {
		return out, sessionKeys{}, fmt.Errorf("noise: handshake act 2: es: %w", err)
	}
	hs.ss.mixKey(es[:])
	var certBuf [CertificateSize]byte
	cert, _ := hs.cert.AppendBinary(certBuf[:0])
	if buf, err = hs.ss.encryptAndHash(buf, cert); err != nil {
		return out, sessionKeys{}, fmt.Errorf("noise: handshake act 2: certificate: %w", err)
	}
	if len(buf) != Act2Size {
		return out, sessionKeys{}, fmt.Errorf("noise: handshake act 2: built %d bytes, want %d", len(buf), Act2Size)
	}
	c1, c2 := hs.ss.split()
	return out, sessionKeys{send: c2, recv: c1}, nil
}
