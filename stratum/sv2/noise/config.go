package noise

import (
	"errors"
	"fmt"
	"time"
)

// Config configures a Conn. The client (initiator) side uses AuthorityKey;
// the server (responder) side uses StaticKey and Certificate.
type Config struct {
	// AuthorityKey is the authority the server's certificate must be signed
	// by. Required for Client unless InsecureSkipAuthority is set.
	AuthorityKey PublicKey

	// InsecureSkipAuthority makes Client accept any server certificate,
	// as the reference implementation does when built without a key. The
	// session is then encrypted but the server is not authenticated.
	InsecureSkipAuthority bool

	// StaticKey is the server's static key. Required for Server.
	StaticKey *PrivateKey

	// Certificate is the SIGNATURE_NOISE_MESSAGE sent by Server, issued by
	// the authority for StaticKey (see IssueCertificate). Required for
	// Server; the server sends it as is, even once expired.
	Certificate *Certificate

	// MaxPayload is the largest frame payload accepted in either direction.
	// Zero means DefaultMaxPayload; it may not exceed MaxPayloadLimit.
	MaxPayload int

	// ClockSkew is the tolerance on each side of the certificate validity
	// window. Zero means DefaultClockSkew; a negative value means none.
	ClockSkew time.Duration

	// Now returns the current time for certificate checks. Nil means
	// time.Now.
	Now func() time.Time
}

func (c Config) validate() error {
	if c.MaxPayload < 0 || c.MaxPayload > MaxPayloadLimit {
		return fmt.Errorf("noise: config: MaxPayload %d outside [0, %d]", c.MaxPayload, MaxPayloadLimit)
	}
	return nil
}

func (c Config) validateClient() error {
	if err := c.validate(); err != nil {
		return err
	}
	if !c.InsecureSkipAuthority {
		if _, err := NewPublicKey(c.AuthorityKey[:]); err != nil {
			return fmt.Errorf("noise: config: AuthorityKey: %w", err)
		}
	}
	return nil
}

func (c Config) validateServer() error {
	if err := c.validate(); err != nil {
		return err
	}
	if c.StaticKey == nil {
		return errors.New("noise: config: StaticKey is required for a server")
	}
	if c.Certificate == nil {
		return errors.New("noise: config: Certificate is required for a server")
	}
	return nil
}

func (c Config) maxPayload() int {
	if c.MaxPayload == 0 {
		return DefaultMaxPayload
	}
	return c.MaxPayload
}

func (c Config) clockSkew() time.Duration {
	switch {
	case c.ClockSkew == 0:
		return DefaultClockSkew
	case c.ClockSkew < 0:
		return 0
	}
	return c.ClockSkew
}

func (c Config) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}
