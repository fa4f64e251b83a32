package noise

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// ProtocolName is the Noise protocol name whose SHA-256 digest is the
// initial chaining key.
const ProtocolName = "Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256"

const (
	// MACSize is the size of a ChaCha20-Poly1305 tag.
	MACSize = chacha20poly1305.Overhead
	keySize = chacha20poly1305.KeySize
)

// cipherState is the Noise CipherState: a key (possibly absent) and a nonce
// counter. The AEAD nonce is 4 zero bytes followed by n as a little-endian
// uint64.
type cipherState struct {
	aead  cipher.AEAD // nil while no key is set
	n     uint64
	nonce [chacha20poly1305.NonceSize]byte
}

func (c *cipherState) initializeKey(k [keySize]byte) {
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		// Unreachable: New fails only on a wrong key length.
		panic("noise: chacha20poly1305.New: " + err.Error())
	}
	c.aead = aead
	c.n = 0
}

func (c *cipherState) hasKey() bool { return c.aead != nil }

// nextNonce returns the nonce for the current counter and advances it. The
// value 2^64-1 is reserved by the Noise framework.
func (c *cipherState) nextNonce() ([]byte, error) {
	if c.n == math.MaxUint64 {
		return nil, ErrNonceExhausted
	}
	binary.LittleEndian.PutUint64(c.nonce[4:], c.n)
	c.n++
	return c.nonce[:], nil
}

// encryptWithAd appends the encryption of plaintext to dst. Without a key it
// appends plaintext unchanged.
func (c *cipherState) encryptWithAd(dst, ad, plaintext []byte) ([]byte, error) {
	if c.aead == nil {
		return append(dst, plaintext...), nil
	}
	nonce, err := c.nextNonce()
	if err != nil {
		return dst, err
	}
	return c.aead.Seal(dst, nonce, plaintext, ad), nil
}

// decryptWithAd appends the decryption of ciphertext to dst. On an
// authentication failure the counter is not advanced and ErrAuthentication
// is returned.
func (c *cipherState) decryptWithAd(dst, ad, ciphertext []byte) ([]byte, error) {
	if c.aead == nil {
		return append(dst, ciphertext...), nil
	}
	if c.n == math.MaxUint64 {
		return dst, ErrNonceExhausted
	}
	binary.LittleEndian.PutUint64(c.nonce[4:], c.n)
	out, err := c.aead.Open(dst, c.nonce[:], ciphertext, ad)
	if err != nil {
		return dst, ErrAuthentication
	}
	c.n++
	return out, nil
}

// symmetricState is the Noise SymmetricState: chaining key ck, handshake
// hash h and the handshake cipher state.
type symmetricState struct {
	cs cipherState
	ck [32]byte
	h  [32]byte
}

// initialize sets ck = SHA256(protocol name) (the name is longer than 32
// bytes) and h = SHA256(ck), with no key.
func (s *symmetricState) initialize() {
	s.ck = sha256.Sum256([]byte(ProtocolName))
	s.h = sha256.Sum256(s.ck[:])
	s.cs = cipherState{}
}

// mixHash sets h = SHA256(h || data).
func (s *symmetricState) mixHash(data []byte) {
	d := sha256.New()
	d.Write(s.h[:])
	d.Write(data)
	d.Sum(s.h[:0])
}

// mixKey sets (ck, k) = HKDF(ck, ikm) and starts the handshake cipher with k.
func (s *symmetricState) mixKey(ikm []byte) {
	ck, k := hkdf2(s.ck, ikm)
	s.ck = ck
	s.cs.initializeKey(k)
}

// encryptAndHash appends EncryptWithAd(h, plaintext) to dst and mixes the
// ciphertext into h.
func (s *symmetricState) encryptAndHash(dst, plaintext []byte) ([]byte, error) {
	start := len(dst)
	out, err := s.cs.encryptWithAd(dst, s.h[:], plaintext)
	if err != nil {
		return dst, err
	}
	s.mixHash(out[start:])
	return out, nil
}

// decryptAndHash appends DecryptWithAd(h, ciphertext) to dst and mixes the
// ciphertext into h.
func (s *symmetricState) decryptAndHash(dst, ciphertext []byte) ([]byte, error) {
	out, err := s.cs.decryptWithAd(dst, s.h[:], ciphertext)
	if err != nil {
		return dst, err
	}
	s.mixHash(ciphertext)
	return out, nil
}

// split derives the transport cipher states: c1 for initiator → responder,
// c2 for responder → initiator.
func (s *symmetricState) split() (c1, c2 cipherState) {
	k1, k2 := hkdf2(s.ck, nil)
	c1.initializeKey(k1)
	c2.initializeKey(k2)
	return c1, c2
}

// hkdf2 is the spec's HKDF(chaining_key, input_key_material) with an empty
// info and two 32-byte outputs: RFC 5869 with HMAC-SHA256 and salt ck.
func hkdf2(ck [32]byte, ikm []byte) (out1, out2 [32]byte) {
	r := hkdf.New(sha256.New, ikm, ck[:], nil)
	var buf [64]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		// Unreachable: HKDF-SHA256 yields up to 8160 bytes.
		panic(fmt.Sprintf("noise: hkdf: %v", err))
	}
	return [32]byte(buf[:32]), [32]byte(buf[32:])
}
