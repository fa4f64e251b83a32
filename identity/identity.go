// Package identity is relaymeter's registry of who pays (applications),
// who is paid (suppliers) and the API keys that stand for them, kept in
// Postgres. Edges and the API turn the key a caller presents into a
// Principal through a Resolver: the Registry itself, or a Cache in front
// of it that costs no query per connection at steady state.
//
// A key is "rmk_" followed by 64 hex digits (32 random bytes). It is shown
// once, when created; the registry keeps only its sha256, so a key that is
// lost is revoked and replaced, never recovered. Key ids ("key_…") are not
// secret: logs, events and the ledger name a key by its id.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Resolver turns an API key's secret into the principal it stands for.
// *Registry and *Cache satisfy it.
type Resolver interface {
	Resolve(ctx context.Context, secret string) (Principal, error)
}

// Role is what a key may do.
type Role string

// Roles.
const (
	// RoleAdmin may do and see everything.
	RoleAdmin Role = "admin"
	// RoleApplication sees its application's traffic and pays for it.
	RoleApplication Role = "application"
	// RoleSupplier sees the traffic its supplier served.
	RoleSupplier Role = "supplier"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleApplication || r == RoleSupplier
}

// Principal is who a key stands for.
type Principal struct {
	// KeyID is the key's id (not secret).
	KeyID string
	Role  Role
	// Application is the application's id for RoleApplication, else "".
	Application string
	// Supplier is the supplier's id for RoleSupplier, else "".
	Supplier string
	// ExpiresAt is when the key stops working; zero for never.
	ExpiresAt time.Time
}

// Application is who pays.
type Application struct {
	ID        string
	Name      string
	Disabled  bool
	CreatedAt time.Time
}

// Supplier is who is paid.
type Supplier struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Key is an API key as the registry keeps it: everything but its secret.
type Key struct {
	ID          string
	Role        Role
	Application string // "" unless RoleApplication
	Supplier    string // "" unless RoleSupplier
	Name        string
	CreatedAt   time.Time
	LastUsedAt  time.Time // zero: never used
	ExpiresAt   time.Time // zero: never expires
	RevokedAt   time.Time // zero: not revoked
}

// NewKey is the spec of a key to create.
type NewKey struct {
	Role Role
	// Application owns a RoleApplication key (its id); empty otherwise.
	Application string
	// Supplier owns a RoleSupplier key (its id); empty otherwise.
	Supplier string
	Name     string
	// ExpiresAt is when the key stops working; zero for never.
	ExpiresAt time.Time
}

// Validate reports what is wrong with k.
func (k NewKey) Validate() error {
	switch {
	case !k.Role.Valid():
		return fmt.Errorf("identity: unknown role %q", k.Role)
	case k.Role == RoleApplication && k.Application == "":
		return errors.New("identity: an application key needs its application")
	case k.Role == RoleSupplier && k.Supplier == "":
		return errors.New("identity: a supplier key needs its supplier")
	case k.Role != RoleApplication && k.Application != "":
		return fmt.Errorf("identity: a %s key has no application", k.Role)
	case k.Role != RoleSupplier && k.Supplier != "":
		return fmt.Errorf("identity: a %s key has no supplier", k.Role)
	}
	return nil
}

// Errors. A key refused for any reason wraps ErrRefused; callers answer
// every refusal alike, so that a caller learns nothing about keys it does
// not hold.
var (
	// ErrRefused is a key that does not let its holder in.
	ErrRefused = errors.New("identity: key refused")
	// ErrNotFound is an application, supplier or key id that does not
	// exist.
	ErrNotFound = errors.New("identity: not found")
	// ErrUnavailable is the registry unreachable for a key not known yet.
	ErrUnavailable = errors.New("identity: registry unavailable")
)

// RefusedError says why a key was refused. It never holds the secret.
type RefusedError struct {
	// Reason is "malformed", "unknown", "revoked", "expired" or
	// "application disabled".
	Reason string
	// KeyID is the key's id where the key exists, else "".
	KeyID string
}

func (e *RefusedError) Error() string {
	if e.KeyID == "" {
		return "identity: key refused: " + e.Reason
	}
	return fmt.Sprintf("identity: key %s refused: %s", e.KeyID, e.Reason)
}

// Is makes every RefusedError match ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Key and id formats.
const (
	// SecretPrefix starts every key's secret.
	SecretPrefix = "rmk_"
	secretBytes  = 32
	idBytes      = 8
)

// LooksLikeSecret reports whether s has the form of a key's secret, so
// that callers can tell a key from other text (a path, an application
// name) without a lookup.
func LooksLikeSecret(s string) bool {
	if len(s) != len(SecretPrefix)+2*secretBytes || !strings.HasPrefix(s, SecretPrefix) {
		return false
	}
	for _, c := range s[len(SecretPrefix):] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Hash is the sha256 of a secret: what the registry stores and caches are
// keyed by, so that no secret is held longer than a lookup.
func Hash(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// newSecret returns a fresh secret.
func newSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("identity: random: %w", err)
	}
	return SecretPrefix + hex.EncodeToString(b), nil
}

// newID returns a fresh id with prefix (e.g. "app_").
func newID(prefix string) (string, error) {
	b := make([]byte, idBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("identity: random: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

// check refuses p if it has expired by now.
func (p Principal) check(now time.Time) error {
	if !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt) {
		return &RefusedError{Reason: "expired", KeyID: p.KeyID}
	}
	return nil
}
