package noise

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// The constant given in the design notes (PROTOCOLS.md) and used by the
// reference implementation.
const wantInitialCK = "2eb47881208e9eee1f669f67c66ee70ea9ea88090d503fe830dc4bc83e29bf10"

func TestInitialChainingKeyAndHash(t *testing.T) {
	var ss symmetricState
	ss.initialize()
	if got := hex.EncodeToString(ss.ck[:]); got != wantInitialCK {
		t.Fatalf("ck = %s, want %s", got, wantInitialCK)
	}
	ck := mustHex(t, wantInitialCK)
	if h := sha256.Sum256(ck); ss.h != h {
		t.Fatalf("h = %x, want SHA256(ck) = %x", ss.h, h)
	}
	if ss.cs.hasKey() {
		t.Fatal("k must be empty after initialization")
	}
}

// hmacHash and the HKDF below follow the specification's text literally.
func hmacHash(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func TestHKDFMatchesSpec(t *testing.T) {
	ck := [32]byte(mustHex(t, wantInitialCK))
	for _, ikm := range [][]byte{nil, bytes.Repeat([]byte{7}, 32)} {
		temp := hmacHash(ck[:], ikm)
		o1 := hmacHash(temp, []byte{1})
		o2 := hmacHash(temp, append(append([]byte{}, o1...), 2))
		g1, g2 := hkdf2(ck, ikm)
		if !bytes.Equal(g1[:], o1) || !bytes.Equal(g2[:], o2) {
			t.Fatalf("hkdf2(%x) = %x %x, want %x %x", ikm, g1, g2, o1, o2)
		}
	}
}

func TestMixHashAndEmptyKeyPassThrough(t *testing.T) {
	var ss symmetricState
	ss.initialize()
	h0 := ss.h
	out, err := ss.encryptAndHash(nil, []byte("abc"))
	if err != nil || string(out) != "abc" {
		t.Fatalf("without a key encryptAndHash must pass through: %q %v", out, err)
	}
	if want := sha256.Sum256(append(h0[:], "abc"...)); ss.h != want {
		t.Fatalf("h = %x, want %x", ss.h, want)
	}
}

func TestNonceLayout(t *testing.T) {
	key := [32]byte(bytes.Repeat([]byte{0x42}, 32))
	var cs cipherState
	cs.initializeKey(key)
	cs.n = 0x0102030405060708
	got, err := cs.encryptWithAd(nil, []byte("ad"), []byte("plaintext"))
	if err != nil {
		t.Fatal(err)
	}
	aead, _ := chacha20poly1305.New(key[:])
	nonce := []byte{0, 0, 0, 0, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}
	if want := aead.Seal(nil, nonce, []byte("plaintext"), []byte("ad")); !bytes.Equal(got, want) {
		t.Fatalf("ciphertext %x, want %x", got, want)
	}
	if cs.n != 0x0102030405060709 {
		t.Fatalf("n = %x after one encryption", cs.n)
	}
	// A failed decryption leaves the counter alone.
	var dec cipherState
	dec.initializeKey(key)
	bad := append([]byte(nil), got...)
	bad[0] ^= 1
	if _, err := dec.decryptWithAd(nil, nil, bad); !errors.Is(err, ErrAuthentication) || dec.n != 0 {
		t.Fatalf("decrypt of garbage: %v, n = %d", err, dec.n)
	}
	cs.n = ^uint64(0)
	if _, err := cs.encryptWithAd(nil, nil, nil); !errors.Is(err, ErrNonceExhausted) {
		t.Fatalf("at 2^64-1: %v", err)
	}
}

// BIP324 packet_encoding_test_vectors.csv, rows 1 (initiating) and 999
// (responding): in_priv_ours, in_ellswift_ours, in_ellswift_theirs,
// in_initiating, mid_x_ours, mid_shared_secret.
func TestV2ECDHVectors(t *testing.T) {
	for _, tc := range []struct {
		priv, ours, theirs string
		initiating         bool
		xOurs, shared      string
	}{
		{
			"e79f04ad4c684525ff3e3cf7c19f4cdb11193d387d7f3fe82a948a0c3165f5fe",
			"4eff53ea1945e57b5d170565e760d771e5d496101c1005c302fd687af80d8b858c5a681c474fc4c0546ee464a1b95899ecb9d4f50c2c0854fe029fc054ae6777",
			"824a1da0530fa695b95b375fee2a56ec96ce375ddd2fcf8367cc8ec1c0b751a3304bbef5dc96543acaac50c24be8cb39906ef8521727de0c6e96c2060a026bd7",
			true,
			"b63341693587b4944b865485cffcc34707b3e0760a6ba8d1d402fc1c996c4e91",
			"05ac09c882b2cddd57fd4a1a14f93ae78d78a2ab2adb8cb6d67176cdb3101e15",
		},
		{
			"53a915e6d8f6c5bbb93e537081085e9e642dc525649acf05be74e3a825e20921",
			"715d7b8357dd4d15a07b3f8c6764ebd9927140f75047fb50478c33ea8889d710511cdf39aa0fd6b1e94ea660d87f9d97bffc548646f9e2aaebc1468fe563fb97",
			"cea7abc3112397b894bd3e89a615248af473f897bbdd30997c20e53e7ce499a295e55c4c5655cd3d21191e76c8af0aa1bbea10fd1b540a42d0fbed388dc59877",
			false,
			"533bbaefc711f303be5e8271fdecfd31d03abd42128ff73479e2a427059e4a74",
			"08cbe6a86ff92a9757b2aeea92b8b2f4d78426786a2caec99c3cc73d7dda47ab",
		},
	} {
		priv, err := NewPrivateKey(mustHex(t, tc.priv))
		if err != nil {
			t.Fatal(err)
		}
		ours := [64]byte(mustHex(t, tc.ours))
		theirs := [64]byte(mustHex(t, tc.theirs))
		x, err := ellSwiftXOnly(ours)
		if err != nil || x.Hex() != tc.xOurs || priv.PublicKey() != x {
			t.Fatalf("decode(ours) = %s, %v, want %s", x.Hex(), err, tc.xOurs)
		}
		got, err := v2ECDH(priv.key, theirs, ours, tc.initiating)
		if err != nil || hex.EncodeToString(got[:]) != tc.shared {
			t.Fatalf("v2_ecdh = %x, %v, want %s", got, err, tc.shared)
		}
		// The other role yields a different secret.
		if flipped, _ := v2ECDH(priv.key, theirs, ours, !tc.initiating); flipped == got {
			t.Fatal("v2_ecdh ignores the role")
		}
	}
}

func TestNewEllKeyEncodesPublicKey(t *testing.T) {
	id := newTestIdentity(t)
	a, err := newEllKey(id.static.key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newEllKey(id.static.key)
	if a.enc == b.enc {
		t.Fatal("two encodings of one key are identical; encoding must be randomised")
	}
	for _, k := range []ellKey{a, b} {
		if x, err := ellSwiftXOnly(k.enc); err != nil || x != id.static.PublicKey() {
			t.Fatalf("decoded %x, %v, want %x", x, err, id.static.PublicKey())
		}
	}
}
