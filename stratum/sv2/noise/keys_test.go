package noise

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

// The test vector of the specification, section 4.7.1.
func TestAuthorityKeySpecVector(t *testing.T) {
	raw := []byte{118, 99, 112, 0, 151, 156, 28, 17, 175, 12, 48, 11, 205, 140, 127, 228, 134, 16, 252, 233, 185, 193, 30, 61, 174, 227, 90, 224, 176, 138, 116, 85}
	const text = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"
	k, err := NewPublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.String(); got != text {
		t.Fatalf("String() = %s, want %s", got, text)
	}
	parsed, err := ParsePublicKey(text)
	if err != nil {
		t.Fatal(err)
	}
	if parsed != k {
		t.Fatalf("ParsePublicKey = %x, want %x", parsed, raw)
	}
	var viaText PublicKey
	if err := viaText.UnmarshalText([]byte(text)); err != nil || viaText != k {
		t.Fatalf("UnmarshalText = %x, %v", viaText, err)
	}
	if m, _ := k.MarshalText(); string(m) != text {
		t.Fatalf("MarshalText = %s", m)
	}
}

// offCurveX returns a 32-byte x with no point on secp256k1.
func offCurveX(t *testing.T) []byte {
	for i := byte(1); i < 255; i++ {
		x := make([]byte, 32)
		x[31] = i
		if _, err := schnorr.ParsePubKey(x); err != nil {
			return x
		}
	}
	t.Fatal("no off-curve x found")
	return nil
}

func TestParsePublicKeyErrors(t *testing.T) {
	const good = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"
	key, _ := ParsePublicKey(good)
	// Change the last character: the checksum no longer matches.
	last := good[len(good)-1]
	repl := byte('2')
	if last == repl {
		repl = '3'
	}
	badSum := good[:len(good)-1] + string(repl)
	wrongPrefix := base58CheckEncode(append([]byte{0x02, 0x00}, key[:]...))
	short := base58CheckEncode(append([]byte{0x01, 0x00}, key[:31]...))
	offCurve := base58CheckEncode(append([]byte{0x01, 0x00}, offCurveX(t)...))
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"bad checksum", badSum, ErrBadChecksum},
		{"wrong prefix", wrongPrefix, ErrBadKeyPrefix},
		{"short key", short, ErrBadKeyPrefix},
		{"off curve", offCurve, ErrInvalidKey},
		{"too short for a checksum", "2g", ErrBadChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePublicKey(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParsePublicKey(%q) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
	for _, in := range []string{"0OIl", good + "0", strings.Repeat("z", 500)} {
		if _, err := ParsePublicKey(in); err == nil {
			t.Errorf("ParsePublicKey(%q) succeeded", in)
		}
	}
}

func TestPrivateKeyRange(t *testing.T) {
	zero := make([]byte, 32)
	order := mustHex(t, "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	for _, b := range [][]byte{zero, order, make([]byte, 31)} {
		if _, err := NewPrivateKey(b); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("NewPrivateKey(%x) = %v, want ErrInvalidKey", b, err)
		}
	}
	one := make([]byte, 32)
	one[31] = 1
	k, err := NewPrivateKey(one)
	if err != nil {
		t.Fatal(err)
	}
	// 1·G: the x coordinate of the generator.
	if got := k.PublicKey().Hex(); got != "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798" {
		t.Fatalf("PublicKey(1) = %s", got)
	}
	if !bytes.Equal(k.Bytes(), one) {
		t.Fatalf("Bytes() = %x", k.Bytes())
	}
	if !(PublicKey{}).IsZero() || k.PublicKey().IsZero() {
		t.Fatal("IsZero wrong")
	}
}
