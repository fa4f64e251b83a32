package noise

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestCertificateIssueAndVerify(t *testing.T) {
	id := newTestIdentity(t)
	server := id.static.PublicKey()
	from := time.Unix(1_700_000_000, 0)
	until := from.Add(24 * time.Hour)
	cert, err := IssueCertificate(id.authority, server, from, until)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Version != 0 || cert.ValidFrom != 1_700_000_000 || cert.NotValidAfter != 1_700_086_400 {
		t.Fatalf("fields: %+v", cert)
	}
	wire, err := cert.MarshalBinary()
	if err != nil || len(wire) != CertificateSize {
		t.Fatalf("MarshalBinary: %d bytes, %v", len(wire), err)
	}
	// version U16 LE, valid_from U32 LE, not_valid_after U32 LE, signature.
	if !bytes.Equal(wire[:10], []byte{0, 0, 0x00, 0xf1, 0x53, 0x65, 0x80, 0x42, 0x55, 0x65}) {
		t.Fatalf("header bytes % x", wire[:10])
	}
	var back Certificate
	if err := back.UnmarshalBinary(wire); err != nil || back != cert {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if _, err := ParseCertificate(wire[:73]); err == nil {
		t.Fatal("ParseCertificate accepted 73 bytes")
	}

	mid := from.Add(time.Hour)
	if err := cert.Verify(id.authority.PublicKey(), server, mid, DefaultClockSkew); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	other := newTestIdentity(t)
	tampered := cert
	tampered.NotValidAfter++
	sigFlip := cert
	sigFlip.Signature[5] ^= 1
	for _, tc := range []struct {
		name      string
		cert      Certificate
		authority PublicKey
		server    PublicKey
		now       time.Time
		skew      time.Duration
		want      error
	}{
		{"wrong authority", cert, other.authority.PublicKey(), server, mid, DefaultClockSkew, ErrWrongAuthority},
		{"wrong server key", cert, id.authority.PublicKey(), other.static.PublicKey(), mid, DefaultClockSkew, ErrWrongAuthority},
		{"tampered window", tampered, id.authority.PublicKey(), server, mid, DefaultClockSkew, ErrWrongAuthority},
		{"tampered signature", sigFlip, id.authority.PublicKey(), server, mid, DefaultClockSkew, ErrWrongAuthority},
		{"expired", cert, id.authority.PublicKey(), server, until.Add(11 * time.Second), DefaultClockSkew, ErrCertificateExpired},
		{"not yet valid", cert, id.authority.PublicKey(), server, from.Add(-11 * time.Second), DefaultClockSkew, ErrCertificateNotYetValid},
		{"expired without skew", cert, id.authority.PublicKey(), server, until.Add(time.Second), 0, ErrCertificateExpired},
		{"early without skew", cert, id.authority.PublicKey(), server, from.Add(-time.Second), -time.Second, ErrCertificateNotYetValid},
		{"edge of skew after", cert, id.authority.PublicKey(), server, until.Add(10*time.Second + 999*time.Millisecond), DefaultClockSkew, nil},
		{"edge of skew before", cert, id.authority.PublicKey(), server, from.Add(-10 * time.Second), DefaultClockSkew, nil},
		{"last second", cert, id.authority.PublicKey(), server, until, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cert.Verify(tc.authority, tc.server, tc.now, tc.skew)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				var ce *CertificateError
				if !errors.As(err, &ce) || ce.Certificate != tc.cert || !ce.Now.Equal(tc.now) {
					t.Fatalf("error %v is not a CertificateError with details", err)
				}
			}
		})
	}
}

func TestIssueCertificateRejects(t *testing.T) {
	id := newTestIdentity(t)
	now := time.Unix(1_700_000_000, 0)
	if _, err := IssueCertificate(id.authority, id.static.PublicKey(), now, now.Add(-time.Second)); err == nil {
		t.Error("accepted a window ending before it starts")
	}
	if _, err := IssueCertificate(id.authority, id.static.PublicKey(), now, time.Unix(1<<32, 0)); err == nil {
		t.Error("accepted not_valid_after beyond U32")
	}
	if _, err := IssueCertificate(nil, id.static.PublicKey(), now, now); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("nil authority: %v", err)
	}
	if _, err := IssueCertificate(id.authority, PublicKey{}, now, now); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("zero server key: %v", err)
	}
}
