package noise

import (
	"errors"
	"fmt"
	"time"
)

// Errors callers may branch on with errors.Is.
var (
	// ErrAuthentication reports that an AEAD tag did not verify: a handshake
	// or transport message was corrupted, truncated or forged. The session
	// cannot continue after it.
	ErrAuthentication = errors.New("noise: message authentication failed")

	// ErrWrongAuthority reports a certificate whose signature does not verify
	// under the expected authority key.
	ErrWrongAuthority = errors.New("noise: certificate not signed by the expected authority")

	// ErrCertificateExpired reports a certificate whose not_valid_after,
	// plus the allowed clock skew, is in the past.
	ErrCertificateExpired = errors.New("noise: certificate expired")

	// ErrCertificateNotYetValid reports a certificate whose valid_from, minus
	// the allowed clock skew, is in the future.
	ErrCertificateNotYetValid = errors.New("noise: certificate not yet valid")

	// ErrInvalidKey reports bytes that are not a valid secp256k1 key.
	ErrInvalidKey = errors.New("noise: invalid key")

	// ErrBadChecksum reports a base58check string whose checksum does not
	// match its payload.
	ErrBadChecksum = errors.New("noise: base58check checksum mismatch")

	// ErrBadKeyPrefix reports an authority key whose version prefix is not
	// [0x01, 0x00], or whose decoded length is wrong.
	ErrBadKeyPrefix = errors.New("noise: bad authority key prefix")

	// ErrNonceExhausted reports that a cipher state used all its nonces; the
	// session must be re-established.
	ErrNonceExhausted = errors.New("noise: nonce exhausted")
)

// FrameTooLargeError reports an Sv2 frame whose msg_length exceeds the
// configured maximum payload. It is returned before anything is allocated
// for the payload.
type FrameTooLargeError struct {
	Length int // msg_length announced by the header
	Limit  int // configured maximum payload
}

// Error describes the announced length and the limit.
func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("noise: frame payload of %d bytes exceeds the limit of %d", e.Length, e.Limit)
}

// CertificateError describes a certificate the initiator rejected. Err is
// one of ErrWrongAuthority, ErrCertificateExpired or
// ErrCertificateNotYetValid, and errors.Is sees through to it.
type CertificateError struct {
	Err         error
	Certificate Certificate
	Now         time.Time // the clock reading the window was checked against
}

// Error describes the rejection and the validity window.
func (e *CertificateError) Error() string {
	return fmt.Sprintf("%v (valid_from %d, not_valid_after %d, now %d)",
		e.Err, e.Certificate.ValidFrom, e.Certificate.NotValidAfter, e.Now.Unix())
}

// Unwrap returns the sentinel error describing the rejection.
func (e *CertificateError) Unwrap() error { return e.Err }
