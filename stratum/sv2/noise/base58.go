package noise

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// maxBase58Input bounds the text accepted by base58Decode; the conversion is
// quadratic, and authority keys are about 51 characters.
const maxBase58Input = 128

// base58Encode encodes b in Bitcoin's base58 alphabet; each leading zero byte
// becomes a leading '1'.
func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	// Base-58 digits, least significant first. log(256)/log(58) < 1.37.
	digits := make([]byte, 0, len(b)*137/100+1)
	for _, v := range b[zeros:] {
		carry := int(v)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	var sb strings.Builder
	sb.Grow(zeros + len(digits))
	for range zeros {
		sb.WriteByte('1')
	}
	for i := len(digits) - 1; i >= 0; i-- {
		sb.WriteByte(base58Alphabet[digits[i]])
	}
	return sb.String()
}

// base58Decode reverses base58Encode.
func base58Decode(s string) ([]byte, error) {
	if len(s) > maxBase58Input {
		return nil, fmt.Errorf("noise: base58 text of %d characters is too long", len(s))
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	// Base-256 digits, least significant first.
	out := make([]byte, 0, len(s))
	for i := zeros; i < len(s); i++ {
		d := strings.IndexByte(base58Alphabet, s[i])
		if d < 0 {
			return nil, fmt.Errorf("noise: invalid base58 character %q at offset %d", s[i], i)
		}
		carry := d
		for j := range out {
			carry += int(out[j]) * 58
			out[j] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			out = append(out, byte(carry))
			carry >>= 8
		}
	}
	res := make([]byte, zeros+len(out))
	for i, v := range out {
		res[len(res)-1-i] = v
	}
	return res, nil
}

// base58CheckEncode appends the first four bytes of SHA256(SHA256(payload))
// to payload and encodes the result in base58.
func base58CheckEncode(payload []byte) string {
	sum := checksum(payload)
	buf := make([]byte, 0, len(payload)+4)
	buf = append(buf, payload...)
	buf = append(buf, sum[:]...)
	return base58Encode(buf)
}

// base58CheckDecode decodes s and verifies and strips its 4-byte checksum.
func base58CheckDecode(s string) ([]byte, error) {
	raw, err := base58Decode(s)
	if err != nil {
		return nil, err
	}
	if len(raw) < 4 {
		return nil, fmt.Errorf("noise: base58check text decodes to %d bytes: %w", len(raw), ErrBadChecksum)
	}
	payload, sum := raw[:len(raw)-4], raw[len(raw)-4:]
	want := checksum(payload)
	if string(sum) != string(want[:]) {
		return nil, ErrBadChecksum
	}
	return payload, nil
}

func checksum(payload []byte) [4]byte {
	first := sha256.Sum256(payload)
	second := sha256.Sum256(first[:])
	return [4]byte(second[:4])
}
