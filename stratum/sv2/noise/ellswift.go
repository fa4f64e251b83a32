package noise

import (
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ellswift"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

// EllSwiftSize is the size of an ElligatorSwift (BIP324) encoded public key.
const EllSwiftSize = 64

// ellKey is a private key with one ElligatorSwift encoding of its public key.
type ellKey struct {
	priv *btcec.PrivateKey
	enc  [EllSwiftSize]byte
}

// generateEllKey returns a fresh random key and its encoding (the ephemeral
// keys of the handshake).
func generateEllKey() (ellKey, error) {
	priv, enc, err := ellswift.EllswiftCreate()
	if err != nil {
		return ellKey{}, fmt.Errorf("noise: generate ephemeral key: %w", err)
	}
	return ellKey{priv: priv, enc: enc}, nil
}

// newEllKey encodes the public key of priv with a fresh random encoding (the
// responder's static key).
func newEllKey(priv *btcec.PrivateKey) (ellKey, error) {
	xb := [32]byte(schnorr.SerializePubKey(priv.PubKey()))
	var x btcec.FieldVal
	x.SetBytes(&xb)
	u, t, err := ellswift.XElligatorSwift(&x)
	if err != nil {
		return ellKey{}, fmt.Errorf("noise: encode static key: %w", err)
	}
	k := ellKey{priv: priv}
	ub, tb := u.Bytes(), t.Bytes()
	copy(k.enc[:32], ub[:])
	copy(k.enc[32:], tb[:])
	return k, nil
}

// ellSwiftXOnly decodes an ElligatorSwift encoding to the x-only key it
// stands for. Every 64-byte string is a valid encoding.
func ellSwiftXOnly(enc [EllSwiftSize]byte) (PublicKey, error) {
	var u, t btcec.FieldVal
	if u.SetByteSlice(enc[:32]) {
		u.Normalize()
	}
	if t.SetByteSlice(enc[32:]) {
		t.Normalize()
	}
	x, err := ellswift.XSwiftEC(&u, &t)
	if err != nil {
		return PublicKey{}, fmt.Errorf("noise: decode ellswift key: %w", err)
	}
	return PublicKey(*x.Bytes()), nil
}

// v2ECDH is BIP324's v2_ecdh: a tagged hash of the initiator's encoding, the
// responder's encoding and the x-only ECDH point.
func v2ECDH(priv *btcec.PrivateKey, theirs, ours [EllSwiftSize]byte, initiator bool) ([32]byte, error) {
	h, err := ellswift.V2Ecdh(priv, theirs, ours, initiator)
	if err != nil {
		return [32]byte{}, fmt.Errorf("noise: ecdh: %w", err)
	}
	return [32]byte(*h), nil
}
