package noise

import (
	"encoding/hex"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

// authorityKeyPrefix is the version prefix of the text form of authority
// keys: a little-endian U16 equal to 1.
var authorityKeyPrefix = [2]byte{0x01, 0x00}

// PublicKey is a secp256k1 public key in BIP340 x-only form (32 bytes). It
// names authorities and servers' static keys. Its text form, used in
// configuration and mining URLs, is the base58check encoding of
// [0x01, 0x00] followed by the 32 key bytes.
type PublicKey [32]byte

// NewPublicKey returns the x-only key in b, checking that it is 32 bytes and
// the x coordinate of a point on secp256k1.
func NewPublicKey(b []byte) (PublicKey, error) {
	if len(b) != 32 {
		return PublicKey{}, fmt.Errorf("noise: public key of %d bytes, want 32: %w", len(b), ErrInvalidKey)
	}
	if _, err := schnorr.ParsePubKey(b); err != nil {
		return PublicKey{}, fmt.Errorf("noise: public key %x: %w", b, ErrInvalidKey)
	}
	return PublicKey(b), nil
}

// ParsePublicKey parses the base58check text form of an authority key. A
// bad checksum yields ErrBadChecksum, a wrong prefix or length
// ErrBadKeyPrefix, and bytes off the curve ErrInvalidKey.
func ParsePublicKey(s string) (PublicKey, error) {
	payload, err := base58CheckDecode(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("noise: parse authority key: %w", err)
	}
	if len(payload) != 2+32 {
		return PublicKey{}, fmt.Errorf("noise: parse authority key: %d bytes decoded, want 34: %w", len(payload), ErrBadKeyPrefix)
	}
	if [2]byte(payload[:2]) != authorityKeyPrefix {
		return PublicKey{}, fmt.Errorf("noise: parse authority key: prefix %x, want %x: %w", payload[:2], authorityKeyPrefix[:], ErrBadKeyPrefix)
	}
	k, err := NewPublicKey(payload[2:])
	if err != nil {
		return PublicKey{}, fmt.Errorf("noise: parse authority key: %w", err)
	}
	return k, nil
}

// String returns the base58check text form of k.
func (k PublicKey) String() string {
	buf := make([]byte, 0, 34)
	buf = append(buf, authorityKeyPrefix[:]...)
	buf = append(buf, k[:]...)
	return base58CheckEncode(buf)
}

// Hex returns k as 64 hexadecimal digits.
func (k PublicKey) Hex() string { return hex.EncodeToString(k[:]) }

// IsZero reports whether k is the zero value, which is not a valid key.
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// MarshalText returns the base58check text form of k.
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses the base58check text form into k.
func (k *PublicKey) UnmarshalText(text []byte) error {
	parsed, err := ParsePublicKey(string(text))
	if err != nil {
		return err
	}
	*k = parsed
	return nil
}

// PrivateKey is a secp256k1 private key: an authority key that signs
// certificates, or a server's static key.
type PrivateKey struct {
	key *btcec.PrivateKey
}

// GeneratePrivateKey returns a new random private key from crypto/rand.
func GeneratePrivateKey() (*PrivateKey, error) {
	k, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, fmt.Errorf("noise: generate private key: %w", err)
	}
	return &PrivateKey{key: k}, nil
}

// NewPrivateKey returns the private key whose 32 big-endian bytes are b,
// rejecting zero and values not below the group order.
func NewPrivateKey(b []byte) (*PrivateKey, error) {
	if len(b) != 32 {
		return nil, fmt.Errorf("noise: private key of %d bytes, want 32: %w", len(b), ErrInvalidKey)
	}
	var s btcec.ModNScalar
	if overflow := s.SetByteSlice(b); overflow || s.IsZero() {
		return nil, fmt.Errorf("noise: private key out of range: %w", ErrInvalidKey)
	}
	return &PrivateKey{key: btcec.PrivKeyFromScalar(&s)}, nil
}

// Bytes returns the 32 big-endian bytes of k.
func (k *PrivateKey) Bytes() []byte { return k.key.Serialize() }

// PublicKey returns the x-only public key of k.
func (k *PrivateKey) PublicKey() PublicKey {
	return PublicKey(schnorr.SerializePubKey(k.key.PubKey()))
}
