package noise

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

const (
	// CertificateSize is the size of SIGNATURE_NOISE_MESSAGE.
	CertificateSize = 74

	// CertificateVersion is the certificate format version peers send.
	CertificateVersion = 0

	// DefaultClockSkew is the clock skew allowed on each side of a
	// certificate's validity window when Config.ClockSkew is zero; peers
	// allow about 10 s.
	DefaultClockSkew = 10 * time.Second
)

// Certificate is SIGNATURE_NOISE_MESSAGE: the responder's proof that an
// authority vouches for its static key during a validity window. On the wire
// it is version U16, valid_from U32, not_valid_after U32 (all little-endian,
// times in Unix seconds) and a 64-byte BIP340 signature by the authority over
// SHA256(version ‖ valid_from ‖ not_valid_after ‖ server x-only static key).
type Certificate struct {
	Version       uint16
	ValidFrom     uint32 // Unix seconds
	NotValidAfter uint32 // Unix seconds, inclusive
	Signature     [64]byte
}

// IssueCertificate returns a certificate, signed by authority, for the server
// static key server, valid from validFrom to notValidAfter (both truncated
// to seconds and within the U32 range of Unix time).
func IssueCertificate(authority *PrivateKey, server PublicKey, validFrom, notValidAfter time.Time) (Certificate, error) {
	if authority == nil {
		return Certificate{}, fmt.Errorf("noise: issue certificate: nil authority key: %w", ErrInvalidKey)
	}
	if _, err := NewPublicKey(server[:]); err != nil {
		return Certificate{}, fmt.Errorf("noise: issue certificate: server key: %w", err)
	}
	from, until := validFrom.Unix(), notValidAfter.Unix()
	if from < 0 || from > math.MaxUint32 || until < 0 || until > math.MaxUint32 {
		return Certificate{}, fmt.Errorf("noise: issue certificate: validity [%d, %d] outside U32 Unix time", from, until)
	}
	if until < from {
		return Certificate{}, fmt.Errorf("noise: issue certificate: not_valid_after %d before valid_from %d", until, from)
	}
	c := Certificate{Version: CertificateVersion, ValidFrom: uint32(from), NotValidAfter: uint32(until)}
	digest := c.digest(server)
	sig, err := schnorr.Sign(authority.key, digest[:])
	if err != nil {
		return Certificate{}, fmt.Errorf("noise: issue certificate: sign: %w", err)
	}
	c.Signature = [64]byte(sig.Serialize())
	return c, nil
}

// ParseCertificate decodes a 74-byte SIGNATURE_NOISE_MESSAGE. It checks the
// length only; Verify checks the rest.
func ParseCertificate(b []byte) (Certificate, error) {
	if len(b) != CertificateSize {
		return Certificate{}, fmt.Errorf("noise: certificate of %d bytes, want %d", len(b), CertificateSize)
	}
	return Certificate{
		Version:       binary.LittleEndian.Uint16(b[0:2]),
		ValidFrom:     binary.LittleEndian.Uint32(b[2:6]),
		NotValidAfter: binary.LittleEndian.Uint32(b[6:10]),
		Signature:     [64]byte(b[10:74]),
	}, nil
}

// AppendBinary appends the 74-byte wire form of c to b.
func (c Certificate) AppendBinary(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint16(b, c.Version)
	b = binary.LittleEndian.AppendUint32(b, c.ValidFrom)
	b = binary.LittleEndian.AppendUint32(b, c.NotValidAfter)
	return append(b, c.Signature[:]...), nil
}

// MarshalBinary returns the 74-byte wire form of c.
func (c Certificate) MarshalBinary() ([]byte, error) {
	return c.AppendBinary(make([]byte, 0, CertificateSize))
}

// UnmarshalBinary decodes the 74-byte wire form into c.
func (c *Certificate) UnmarshalBinary(b []byte) error {
	parsed, err := ParseCertificate(b)
	if err != nil {
		return err
	}
	*c = parsed
	return nil
}

// digest is SHA256(version ‖ valid_from ‖ not_valid_after ‖ server key).
func (c Certificate) digest(server PublicKey) [32]byte {
	var m [10 + 32]byte
	binary.LittleEndian.PutUint16(m[0:2], c.Version)
	binary.LittleEndian.PutUint32(m[2:6], c.ValidFrom)
	binary.LittleEndian.PutUint32(m[6:10], c.NotValidAfter)
	copy(m[10:], server[:])
	return sha256.Sum256(m[:])
}

// Verify checks that c is signed by authority for the server static key
// server, and that now lies within [ValidFrom-skew, NotValidAfter+skew], now
// being counted in whole seconds as peers do. A negative skew counts as
// zero. Failures are *CertificateError values wrapping ErrWrongAuthority,
// ErrCertificateExpired or ErrCertificateNotYetValid.
func (c Certificate) Verify(authority, server PublicKey, now time.Time, skew time.Duration) error {
	fail := func(err error) error { return &CertificateError{Err: err, Certificate: c, Now: now} }
	pub, err := schnorr.ParsePubKey(authority[:])
	if err != nil {
		return fmt.Errorf("noise: verify certificate: authority key: %w", ErrInvalidKey)
	}
	sig, err := schnorr.ParseSignature(c.Signature[:])
	if err != nil {
		return fail(ErrWrongAuthority)
	}
	digest := c.digest(server)
	if !sig.Verify(digest[:], pub) {
		return fail(ErrWrongAuthority)
	}
	skew = max(skew, 0)
	t := time.Unix(now.Unix(), 0)
	if t.Before(time.Unix(int64(c.ValidFrom), 0).Add(-skew)) {
		return fail(ErrCertificateNotYetValid)
	}
	if t.After(time.Unix(int64(c.NotValidAfter), 0).Add(skew)) {
		return fail(ErrCertificateExpired)
	}
	return nil
}
