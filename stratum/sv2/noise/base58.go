package noise

import (
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/base58"
)

// maxBase58Input bounds the text accepted by base58CheckDecode; the
// conversion is quadratic, and authority keys are about 51 characters.
const maxBase58Input = 128

// base58CheckEncode returns the base58check text of payload: payload, then
// the first four bytes of SHA256(SHA256(payload)), in Bitcoin's base58. The
// first byte of payload is what Bitcoin calls the version.
func base58CheckEncode(payload []byte) string {
	if len(payload) == 0 {
		return ""
	}
	return base58.CheckEncode(payload[1:], payload[0])
}

// base58CheckDecode decodes s and verifies and strips its 4-byte checksum.
func base58CheckDecode(s string) ([]byte, error) {
	if len(s) > maxBase58Input {
		return nil, fmt.Errorf("noise: base58check text of %d characters, at most %d", len(s), maxBase58Input)
	}
	out, version, err := base58.CheckDecode(s)
	switch {
	case errors.Is(err, base58.ErrChecksum), errors.Is(err, base58.ErrInvalidFormat):
		return nil, fmt.Errorf("noise: base58check text %q: %w", s, ErrBadChecksum)
	case err != nil:
		return nil, fmt.Errorf("noise: base58check text %q: %w", s, err)
	}
	return append([]byte{version}, out...), nil
}
