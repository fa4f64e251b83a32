package graphql

import (
	"context"

	"github.com/relaymeter/relaymeter/identity"
	"github.com/relaymeter/relaymeter/ledger"
)

// scopeOf returns the rows the ledger may show p: every row to an admin,
// an application's rows to its keys, a supplier's to its keys, and none
// to anyone else (a context without a principal, a key of an unknown role,
// a key whose owner is missing).
func scopeOf(p identity.Principal) ledger.Scope {
	switch {
	case p.Role == identity.RoleAdmin:
		return ledger.All
	case p.Role == identity.RoleApplication && p.Application != "":
		return ledger.Scope{Application: p.Application}
	case p.Role == identity.RoleSupplier && p.Supplier != "":
		return ledger.Scope{Supplier: p.Supplier}
	}
	return ledger.None
}

// scope returns the scope of the caller of ctx.
func scope(ctx context.Context) ledger.Scope { return scopeOf(principalFrom(ctx)) }

// errForbidden is the answer to a caller whose role may not do what it
// asked.
var errForbidden = &codedError{msg: "forbidden: this needs an admin key", code: CodeForbidden}

// requireAdmin returns errForbidden unless the caller of ctx is an admin.
func requireAdmin(ctx context.Context) error {
	if principalFrom(ctx).Role != identity.RoleAdmin {
		return errForbidden
	}
	return nil
}
