package graphql

import (
	"context"
	"errors"
	"strings"
	"time"

	gql "github.com/graph-gophers/graphql-go"

	"github.com/relaymeter/relaymeter/identity"
)

// Registry is what the API asks of the identity registry: the admin
// mutations and lists, and the names viewer shows. *identity.Registry
// satisfies it.
type Registry interface {
	CreateApplication(ctx context.Context, name string) (identity.Application, error)
	SetApplicationDisabled(ctx context.Context, id string, disabled bool) (identity.Application, error)
	Application(ctx context.Context, id string) (identity.Application, error)
	Applications(ctx context.Context) ([]identity.Application, error)
	CreateSupplier(ctx context.Context, name string) (identity.Supplier, error)
	Supplier(ctx context.Context, id string) (identity.Supplier, error)
	Suppliers(ctx context.Context) ([]identity.Supplier, error)
	CreateKey(ctx context.Context, spec identity.NewKey) (secret string, k identity.Key, err error)
	RevokeKey(ctx context.Context, id string) (identity.Key, error)
	Keys(ctx context.Context) ([]identity.Key, error)
}

// errNoRegistry answers what needs a registry when the API has none.
var errNoRegistry = &codedError{msg: "no key registry is configured on this server", code: CodeUnavailable}

// admin returns the registry for an admin's request, or why not.
func (r *resolver) admin(ctx context.Context) (Registry, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if r.registry == nil {
		return nil, errNoRegistry
	}
	return r.registry, nil
}

// registryFail turns a registry error into what the client may see.
func (r *resolver) registryFail(ctx context.Context, op string, err error) error {
	if errors.Is(err, identity.ErrNotFound) {
		return &codedError{msg: op + ": no such application, supplier or key", code: CodeNotFound}
	}
	return fail(ctx, r.log, op, err)
}

// roles maps the schema's Role to identity's and back.
var roles = map[string]identity.Role{"ADMIN": identity.RoleAdmin, "APPLICATION": identity.RoleApplication, "SUPPLIER": identity.RoleSupplier}

func roleName(r identity.Role) string {
	for name, role := range roles {
		if role == r {
			return name
		}
	}
	return strings.ToUpper(string(r))
}

// Mutations.

// CreateApplication creates an application (admins only).
func (r *resolver) CreateApplication(ctx context.Context, args struct{ Name string }) (*applicationResolver, error) {
	reg, err := r.admin(ctx)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(args.Name) == "" {
		return nil, badInput("invalid name: empty")
	}
	a, err := reg.CreateApplication(ctx, args.Name)
	if err != nil {
		return nil, r.registryFail(ctx, "create application", err)
	}
	return &applicationResolver{a}, nil
}

// DisableApplication disables an application: its keys are refused (within
// the key cache's TTL) (admins only).
func (r *resolver) DisableApplication(ctx context.Context, args struct{ ID gql.ID }) (*applicationResolver, error) {
	return r.setDisabled(ctx, args.ID, true)
}

// EnableApplication enables a disabled application again (admins only).
func (r *resolver) EnableApplication(ctx context.Context, args struct{ ID gql.ID }) (*applicationResolver, error) {
	return r.setDisabled(ctx, args.ID, false)
}

func (r *resolver) setDisabled(ctx context.Context, id gql.ID, disabled bool) (*applicationResolver, error) {
	reg, err := r.admin(ctx)
	if err != nil {
		return nil, err
	}
	a, err := reg.SetApplicationDisabled(ctx, string(id), disabled)
	if err != nil {
		return nil, r.registryFail(ctx, "disable application", err)
	}
	return &applicationResolver{a}, nil
}

// CreateSupplier creates a supplier (admins only).
func (r *resolver) CreateSupplier(ctx context.Context, args struct{ Name string }) (*supplierResolver, error) {
	reg, err := r.admin(ctx)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(args.Name) == "" {
		return nil, badInput("invalid name: empty")
	}
	s, err := reg.CreateSupplier(ctx, args.Name)
	if err != nil {
		return nil, r.registryFail(ctx, "create supplier", err)
	}
	return &supplierResolver{s}, nil
}

// CreateAPIKey creates a key and returns its secret, the only time it is
// shown (admins only).
func (r *resolver) CreateAPIKey(ctx context.Context, args struct {
	Role        string
	Application *gql.ID
	Supplier    *gql.ID
	Name        *string
	ExpiresAt   *Time
}) (*newKeyResolver, error) {
	reg, err := r.admin(ctx)
	if err != nil {
		return nil, err
	}
	spec := identity.NewKey{Role: roles[args.Role], Name: str(args.Name), ExpiresAt: timeOf(args.ExpiresAt).Time}
	if args.Application != nil {
		spec.Application = string(*args.Application)
	}
	if args.Supplier != nil {
		spec.Supplier = string(*args.Supplier)
	}
	if err := spec.Validate(); err != nil {
		return nil, badInput(strings.TrimPrefix(err.Error(), "identity: "))
	}
	if !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(time.Now()) {
		return nil, badInput("invalid expiresAt: not in the future")
	}
	secret, k, err := reg.CreateKey(ctx, spec)
	if err != nil {
		return nil, r.registryFail(ctx, "create key", err)
	}
	return &newKeyResolver{secret: secret, key: &keyResolver{r, k}}, nil
}

// RevokeAPIKey revokes a key: it is refused within the key cache's TTL
// (admins only). Revoking a revoked key keeps its first revocation.
func (r *resolver) RevokeAPIKey(ctx context.Context, args struct{ ID gql.ID }) (*keyResolver, error) {
	reg, err := r.admin(ctx)
	if err != nil {
		return nil, err
	}
	k, err := reg.RevokeKey(ctx, string(args.ID))
	if err != nil {
		return nil, r.registryFail(ctx, "revoke key", err)
	}
	return &keyResolver{r, k}, nil
}

// Admin lists.

// Applications lists every application (admins only).
func (r *resolver) Applications(ctx context.Context) ([]*applicationResolver, error) {
	reg, err := r.admin(ctx)
	if err != nil {
		return nil, err
	}
	apps, err := reg.Applications(ctx)
	if err != nil {
		return nil, r.registryFail(ctx, "applications", err)
	}
	out := make([]*applicationResolver, len(apps))
	for i, a := range apps {
		out[i] = &applicationResolver{a}
	}
	return out, nil
}

// Suppliers lists every supplier (admins only).
func (r *resolver) Suppliers(ctx context.Context) ([]*supplierResolver, error) {
	reg, err := r.admin(ctx)
	if err != nil {
		return nil, err
	}
	sups, err := reg.Suppliers(ctx)
	if err != nil {
		return nil, r.registryFail(ctx, "suppliers", err)
	}
	out := make([]*supplierResolver, len(sups))
	for i, s := range sups {
		out[i] = &supplierResolver{s}
	}
	return out, nil
}

// APIKeys lists every key, without secrets (admins only).
func (r *resolver) APIKeys(ctx context.Context) ([]*keyResolver, error) {
	reg, err := r.admin(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := reg.Keys(ctx)
	if err != nil {
		return nil, r.registryFail(ctx, "keys", err)
	}
	out := make([]*keyResolver, len(keys))
	for i, k := range keys {
		out[i] = &keyResolver{r, k}
	}
	return out, nil
}

// Viewer.

// Viewer is the caller: its role and its owner.
func (r *resolver) Viewer(ctx context.Context) (*viewerResolver, error) {
	p := principalFrom(ctx)
	if !p.Role.Valid() {
		return nil, errForbidden
	}
	return &viewerResolver{r, p}, nil
}

type viewerResolver struct {
	root *resolver
	p    identity.Principal
}

func (v *viewerResolver) Role() string  { return roleName(v.p.Role) }
func (v *viewerResolver) KeyID() string { return v.p.KeyID }
func (v *viewerResolver) Application(ctx context.Context) (*applicationResolver, error) {
	return v.root.application(ctx, v.p.Application)
}
func (v *viewerResolver) Supplier(ctx context.Context) (*supplierResolver, error) {
	return v.root.supplier(ctx, v.p.Supplier)
}

// application loads application id for a resolver that links it; nil
// for "". Without a registry, only the id is known.
func (r *resolver) application(ctx context.Context, id string) (*applicationResolver, error) {
	if id == "" {
		return nil, nil
	}
	if r.registry == nil {
		return &applicationResolver{identity.Application{ID: id}}, nil
	}
	a, err := r.registry.Application(ctx, id)
	if errors.Is(err, identity.ErrNotFound) {
		return &applicationResolver{identity.Application{ID: id}}, nil
	}
	if err != nil {
		return nil, fail(ctx, r.log, "application", err)
	}
	return &applicationResolver{a}, nil
}

// supplier is application's counterpart for suppliers.
func (r *resolver) supplier(ctx context.Context, id string) (*supplierResolver, error) {
	if id == "" {
		return nil, nil
	}
	if r.registry == nil {
		return &supplierResolver{identity.Supplier{ID: id}}, nil
	}
	s, err := r.registry.Supplier(ctx, id)
	if errors.Is(err, identity.ErrNotFound) {
		return &supplierResolver{identity.Supplier{ID: id}}, nil
	}
	if err != nil {
		return nil, fail(ctx, r.log, "supplier", err)
	}
	return &supplierResolver{s}, nil
}

type applicationResolver struct{ a identity.Application }

func (a *applicationResolver) ID() gql.ID      { return gql.ID(a.a.ID) }
func (a *applicationResolver) Name() string    { return a.a.Name }
func (a *applicationResolver) Disabled() bool  { return a.a.Disabled }
func (a *applicationResolver) CreatedAt() Time { return Time{a.a.CreatedAt} }

type supplierResolver struct{ s identity.Supplier }

func (s *supplierResolver) ID() gql.ID      { return gql.ID(s.s.ID) }
func (s *supplierResolver) Name() string    { return s.s.Name }
func (s *supplierResolver) CreatedAt() Time { return Time{s.s.CreatedAt} }

type keyResolver struct {
	root *resolver
	k    identity.Key
}

func (k *keyResolver) ID() gql.ID   { return gql.ID(k.k.ID) }
func (k *keyResolver) Role() string { return roleName(k.k.Role) }
func (k *keyResolver) Application(ctx context.Context) (*applicationResolver, error) {
	return k.root.application(ctx, k.k.Application)
}
func (k *keyResolver) Supplier(ctx context.Context) (*supplierResolver, error) {
	return k.root.supplier(ctx, k.k.Supplier)
}
func (k *keyResolver) Name() string      { return k.k.Name }
func (k *keyResolver) CreatedAt() Time   { return Time{k.k.CreatedAt} }
func (k *keyResolver) LastUsedAt() *Time { return optZeroTime(k.k.LastUsedAt) }
func (k *keyResolver) ExpiresAt() *Time  { return optZeroTime(k.k.ExpiresAt) }
func (k *keyResolver) RevokedAt() *Time  { return optZeroTime(k.k.RevokedAt) }

// optZeroTime is null for the zero time.
func optZeroTime(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	return &Time{t}
}

type newKeyResolver struct {
	secret string
	key    *keyResolver
}

func (n *newKeyResolver) ID() gql.ID        { return n.key.ID() }
func (n *newKeyResolver) Secret() string    { return n.secret }
func (n *newKeyResolver) Key() *keyResolver { return n.key }
