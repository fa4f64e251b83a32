package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Registry keeps applications, suppliers and keys in Postgres (the tables
// of migration 00004_identity).
type Registry struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// NewRegistry returns a Registry over pool; the schema must be migrated.
func NewRegistry(pool *pgxpool.Pool) *Registry {
	return &Registry{pool: pool, now: time.Now}
}

// CreateApplication creates an application named name.
func (r *Registry) CreateApplication(ctx context.Context, name string) (Application, error) {
	if name == "" {
		return Application{}, errors.New("identity: an application needs a name")
	}
	id, err := newID("app_")
	if err != nil {
		return Application{}, err
	}
	row := r.pool.QueryRow(ctx, `INSERT INTO applications (id, name) VALUES ($1, $2)
		RETURNING id, name, disabled, created_at`, id, name)
	return scanApplication(row, "create application")
}

// SetApplicationDisabled disables (or enables again) application id: the
// keys of a disabled application are refused.
func (r *Registry) SetApplicationDisabled(ctx context.Context, id string, disabled bool) (Application, error) {
	row := r.pool.QueryRow(ctx, `UPDATE applications SET disabled = $2 WHERE id = $1
		RETURNING id, name, disabled, created_at`, id, disabled)
	return scanApplication(row, "disable application")
}

// Application returns application id, or ErrNotFound.
func (r *Registry) Application(ctx context.Context, id string) (Application, error) {
	row := r.pool.QueryRow(ctx, `SELECT id, name, disabled, created_at FROM applications WHERE id = $1`, id)
	return scanApplication(row, "application")
}

// Applications returns every application, oldest first.
func (r *Registry) Applications(ctx context.Context) ([]Application, error) {
	rows, err := r.pool.Query(ctx, `SELECT id, name, disabled, created_at FROM applications ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("identity: applications: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Application, error) {
		return scanApplication(row, "applications")
	})
}

func scanApplication(row pgx.Row, what string) (Application, error) {
	var a Application
	if err := row.Scan(&a.ID, &a.Name, &a.Disabled, &a.CreatedAt); err != nil {
		return Application{}, wrap(what, err)
	}
	return a, nil
}

// CreateSupplier creates a supplier named name.
func (r *Registry) CreateSupplier(ctx context.Context, name string) (Supplier, error) {
	if name == "" {
		return Supplier{}, errors.New("identity: a supplier needs a name")
	}
	id, err := newID("sup_")
	if err != nil {
		return Supplier{}, err
	}
	row := r.pool.QueryRow(ctx, `INSERT INTO suppliers (id, name) VALUES ($1, $2) RETURNING id, name, created_at`, id, name)
	return scanSupplier(row, "create supplier")
}

// Supplier returns supplier id, or ErrNotFound.
func (r *Registry) Supplier(ctx context.Context, id string) (Supplier, error) {
	row := r.pool.QueryRow(ctx, `SELECT id, name, created_at FROM suppliers WHERE id = $1`, id)
	return scanSupplier(row, "supplier")
}

// Suppliers returns every supplier, oldest first.
func (r *Registry) Suppliers(ctx context.Context) ([]Supplier, error) {
	rows, err := r.pool.Query(ctx, `SELECT id, name, created_at FROM suppliers ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("identity: suppliers: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Supplier, error) {
		return scanSupplier(row, "suppliers")
	})
}

func scanSupplier(row pgx.Row, what string) (Supplier, error) {
	var s Supplier
	if err := row.Scan(&s.ID, &s.Name, &s.CreatedAt); err != nil {
		return Supplier{}, wrap(what, err)
	}
	return s, nil
}

// keyColumns are the columns scanKey reads, in order.
const keyColumns = `id, role, coalesce(application, ''), coalesce(supplier, ''), name, created_at, last_used_at, expires_at, revoked_at`

// CreateKey creates a key to spec and returns its secret, which is not
// kept and cannot be shown again, with the key.
func (r *Registry) CreateKey(ctx context.Context, spec NewKey) (secret string, k Key, err error) {
	if err := spec.Validate(); err != nil {
		return "", Key{}, err
	}
	if !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(r.now()) {
		return "", Key{}, errors.New("identity: the key would have expired already")
	}
	id, err := newID("key_")
	if err != nil {
		return "", Key{}, err
	}
	if secret, err = newSecret(); err != nil {
		return "", Key{}, err
	}
	h := Hash(secret)
	row := r.pool.QueryRow(ctx, `INSERT INTO api_keys (id, secret_sha256, role, application, supplier, name, expires_at)
		VALUES ($1, $2, $3, nullif($4, ''), nullif($5, ''), $6, $7) RETURNING `+keyColumns,
		id, h[:], string(spec.Role), spec.Application, spec.Supplier, spec.Name, nullTime(spec.ExpiresAt))
	k, err = scanKey(row, "create key")
	if err != nil {
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "23503" { // foreign key: no such owner
			return "", Key{}, fmt.Errorf("identity: create key: owner: %w", ErrNotFound)
		}
		return "", Key{}, err
	}
	return secret, k, nil
}

// Key returns key id, or ErrNotFound.
func (r *Registry) Key(ctx context.Context, id string) (Key, error) {
	return scanKey(r.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id), "key")
}

// Keys returns every key, oldest first.
func (r *Registry) Keys(ctx context.Context) ([]Key, error) {
	rows, err := r.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("identity: keys: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Key, error) { return scanKey(row, "keys") })
}

// RevokeKey revokes key id. Revoking a revoked key keeps its first
// revocation time.
func (r *Registry) RevokeKey(ctx context.Context, id string) (Key, error) {
	row := r.pool.QueryRow(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING `+keyColumns, id)
	return scanKey(row, "revoke key")
}

func scanKey(row pgx.Row, what string) (Key, error) {
	var k Key
	var role string
	var used, expires, revoked *time.Time
	if err := row.Scan(&k.ID, &role, &k.Application, &k.Supplier, &k.Name, &k.CreatedAt, &used, &expires, &revoked); err != nil {
		return Key{}, wrap(what, err)
	}
	k.Role = Role(role)
	k.LastUsedAt, k.ExpiresAt, k.RevokedAt = deref(used), deref(expires), deref(revoked)
	return k, nil
}

// Resolve returns the principal of the key whose secret is secret, and
// notes the key as used. A key that is malformed, unknown, revoked,
// expired or of a disabled application is a *RefusedError; Postgres
// failing is ErrUnavailable.
func (r *Registry) Resolve(ctx context.Context, secret string) (Principal, error) {
	if !LooksLikeSecret(secret) {
		return Principal{}, &RefusedError{Reason: "malformed"}
	}
	h := Hash(secret)
	var p Principal
	var role string
	var expires, revoked *time.Time
	var disabled bool
	err := r.pool.QueryRow(ctx, `WITH k AS (
			UPDATE api_keys SET last_used_at = now() WHERE secret_sha256 = $1
			RETURNING id, role, application, supplier, expires_at, revoked_at)
		SELECT k.id, k.role, coalesce(k.application, ''), coalesce(k.supplier, ''), k.expires_at, k.revoked_at,
			coalesce(a.disabled, false)
		FROM k LEFT JOIN applications a ON a.id = k.application`, h[:]).
		Scan(&p.KeyID, &role, &p.Application, &p.Supplier, &expires, &revoked, &disabled)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Principal{}, &RefusedError{Reason: "unknown"}
	case err != nil:
		return Principal{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case revoked != nil:
		return Principal{}, &RefusedError{Reason: "revoked", KeyID: p.KeyID}
	case disabled:
		return Principal{}, &RefusedError{Reason: "application disabled", KeyID: p.KeyID}
	}
	p.Role, p.ExpiresAt = Role(role), deref(expires)
	if err := p.check(r.now()); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// wrap names what failed, with ErrNotFound for no row.
func wrap(what string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("identity: %s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("identity: %s: %w", what, err)
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
