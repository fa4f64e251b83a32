package graphql

import (
	"context"
	_ "embed"
	"encoding/hex"
	"errors"
	"strings"

	gql "github.com/graph-gophers/graphql-go"

	"github.com/relaymeter/relaymeter/ledger"
)

// settlementSDL declares the settlement reads (sessions, payouts, the
// ledger), served with the schema.
//
//go:embed settlement.graphqls
var settlementSDL string

// Sessions.

type sessionFilterInput struct {
	Application, Service, Supplier *string
	State                          *string
	From, To                       *Time
}

// Sessions answers sessions: the settlement units args.Filter selects
// within the caller's scope, newest first.
func (r *resolver) Sessions(ctx context.Context, args struct {
	Filter *sessionFilterInput
	First  *int32
	After  *string
}) (*connection[*sessionResolver], error) {
	f := ledger.SessionFilter{Scope: scope(ctx)}
	if in := args.Filter; in != nil {
		f = ledger.SessionFilter{Scope: f.Scope, Application: str(in.Application), Service: str(in.Service),
			Supplier: str(in.Supplier), State: ledger.SessionState(str(in.State)),
			From: timeOf(in.From).Time, To: timeOf(in.To).Time}
	}
	first, after := pageArgs{args.First, args.After}.page()
	p, err := r.store.ListSessions(ctx, f, first, after)
	if err != nil {
		return nil, fail(ctx, r.log, "sessions", err)
	}
	return newConnection(p, func(row ledger.SessionRow) *sessionResolver { return &sessionResolver{r, row} }), nil
}

// Session answers session(id): null for an id the caller may not see, as
// for one that does not exist.
func (r *resolver) Session(ctx context.Context, args struct{ ID gql.ID }) (*sessionResolver, error) {
	return r.session(ctx, string(args.ID))
}

func (r *resolver) session(ctx context.Context, id string) (*sessionResolver, error) {
	row, found, err := r.store.SessionByID(ctx, scope(ctx), id)
	if err != nil {
		return nil, fail(ctx, r.log, "session", err)
	}
	if !found {
		return nil, nil
	}
	return &sessionResolver{r, row}, nil
}

type sessionResolver struct {
	root *resolver
	s    ledger.SessionRow
}

func (s *sessionResolver) ID() gql.ID          { return gql.ID(s.s.ID) }
func (s *sessionResolver) SessionID() string   { return s.s.SessionID }
func (s *sessionResolver) Application() string { return s.s.Application }
func (s *sessionResolver) Service() string     { return s.s.Service }
func (s *sessionResolver) Supplier() string    { return s.s.Supplier }
func (s *sessionResolver) StartHeight() Long   { return Long(s.s.StartHeight) }
func (s *sessionResolver) EndHeight() Long     { return Long(s.s.EndHeight) }
func (s *sessionResolver) State() string       { return string(s.s.State) }
func (s *sessionResolver) StartsAt() Time      { return Time{s.s.StartsAt} }
func (s *sessionResolver) EndsAt() *Time       { return optTime(s.s.EndsAt) }
func (s *sessionResolver) SettledAt() *Time {
	if s.s.State != ledger.SessionSettled {
		return nil
	}
	return &Time{s.s.SettledAt}
}
func (s *sessionResolver) Relays() Long   { return Long(s.s.Relays) }
func (s *sessionResolver) Units() Long    { return Long(s.s.Units) }
func (s *sessionResolver) Amount() string { return s.s.Amount }
func (s *sessionResolver) Currency() *string {
	if s.s.Currency == "" {
		return nil
	}
	return &s.s.Currency
}

// Payouts answers Session.payouts: the transactions posted with the
// session, newest first (a session has a handful).
func (s *sessionResolver) Payouts(ctx context.Context) ([]*payoutResolver, error) {
	if s.s.State != ledger.SessionSettled {
		return []*payoutResolver{}, nil
	}
	p, err := s.root.store.ListPayouts(ctx, ledger.PayoutFilter{Scope: scope(ctx), Session: s.s.ID}, ledger.MaxPageSize, "")
	if err != nil {
		return nil, fail(ctx, s.root.log, "session payouts", err)
	}
	out := make([]*payoutResolver, len(p.Items))
	for i, row := range p.Items {
		out[i] = &payoutResolver{s.root, row}
	}
	return out, nil
}

// Payouts.

type payoutFilterInput struct {
	Application, Service, Supplier *string
	Kind                           *string
	Session                        *gql.ID
	From, To                       *Time
}

// kindIn is a TransactionKind argument as the ledger stores it.
func kindIn(p *string) string { return strings.ToLower(str(p)) }

// Payouts answers payouts: the transactions paying for sessions that
// args.Filter selects within the caller's scope, newest first.
func (r *resolver) Payouts(ctx context.Context, args struct {
	Filter *payoutFilterInput
	First  *int32
	After  *string
}) (*connection[*payoutResolver], error) {
	f := ledger.PayoutFilter{Scope: scope(ctx)}
	if in := args.Filter; in != nil {
		f = ledger.PayoutFilter{Scope: f.Scope, Application: str(in.Application), Service: str(in.Service),
			Supplier: str(in.Supplier), Kind: kindIn(in.Kind), From: timeOf(in.From).Time, To: timeOf(in.To).Time}
		if in.Session != nil {
			f.Session = string(*in.Session)
		}
	}
	first, after := pageArgs{args.First, args.After}.page()
	p, err := r.store.ListPayouts(ctx, f, first, after)
	if err != nil {
		return nil, fail(ctx, r.log, "payouts", err)
	}
	return newConnection(p, func(row ledger.PayoutRow) *payoutResolver { return &payoutResolver{r, row} }), nil
}

type payoutResolver struct {
	root *resolver
	p    ledger.PayoutRow
}

func (p *payoutResolver) ID() gql.ID             { return gql.ID(p.p.ID) }
func (p *payoutResolver) Seq() Long              { return Long(p.p.Seq) }
func (p *payoutResolver) Kind() string           { return strings.ToUpper(p.p.Kind) }
func (p *payoutResolver) Application() string    { return p.p.Application }
func (p *payoutResolver) Service() string        { return p.p.Service }
func (p *payoutResolver) Supplier() string       { return p.p.Supplier }
func (p *payoutResolver) Gross() string          { return p.p.Gross }
func (p *payoutResolver) Fee() string            { return p.p.Fee }
func (p *payoutResolver) SupplierAmount() string { return p.p.SupplierAmount }
func (p *payoutResolver) Currency() string       { return p.p.Currency }
func (p *payoutResolver) PostedAt() Time         { return Time{p.p.PostedAt} }

func (p *payoutResolver) Session(ctx context.Context) (*sessionResolver, error) {
	if !p.p.Session.Valid {
		return nil, nil
	}
	return p.root.session(ctx, p.p.Session.V)
}

// Transaction answers Payout.transaction: the payout is the transaction,
// which its caller may see.
func (p *payoutResolver) Transaction(ctx context.Context) (*transactionResolver, error) {
	t, found, err := p.root.store.TransactionBySeq(ctx, scope(ctx), p.p.Seq)
	if err != nil {
		return nil, fail(ctx, p.root.log, "payout transaction", err)
	}
	if !found {
		// A payout is a transaction its caller may see, read again.
		return nil, fail(ctx, p.root.log, "payout transaction", errors.New("transaction vanished"))
	}
	return &transactionResolver{p.root, t}, nil
}

// Accounts.

type accountFilterInput struct {
	Kind, Owner, Currency *string
}

// Accounts answers accounts: the caller's accounts (every account for an
// admin), by id.
func (r *resolver) Accounts(ctx context.Context, args struct {
	Filter *accountFilterInput
	First  *int32
	After  *string
}) (*connection[*accountResolver], error) {
	f := ledger.AccountFilter{Scope: scope(ctx)}
	if in := args.Filter; in != nil {
		f.Kind, f.Owner, f.Currency = strings.ToLower(str(in.Kind)), str(in.Owner), str(in.Currency)
	}
	first, after := pageArgs{args.First, args.After}.page()
	p, err := r.store.ListAccounts(ctx, f, first, after)
	if err != nil {
		return nil, fail(ctx, r.log, "accounts", err)
	}
	return newConnection(p, func(row ledger.AccountRow) *accountResolver { return &accountResolver{row} }), nil
}

type accountResolver struct{ a ledger.AccountRow }

func (a *accountResolver) ID() gql.ID       { return gql.ID(a.a.ID) }
func (a *accountResolver) Kind() string     { return strings.ToUpper(a.a.Kind) }
func (a *accountResolver) Owner() string    { return a.a.Owner }
func (a *accountResolver) Currency() string { return a.a.Currency }
func (a *accountResolver) Balance() string  { return a.a.Balance }

// Balance answers balance(account, at): null for an account the caller
// may not see, as for one that does not exist.
func (r *resolver) Balance(ctx context.Context, args struct {
	Account string
	At      *Time
}) (*balanceResolver, error) {
	b, found, err := r.store.AccountBalance(ctx, scope(ctx), args.Account, timeOf(args.At).Time)
	if err != nil {
		return nil, fail(ctx, r.log, "balance", err)
	}
	if !found {
		return nil, nil
	}
	return &balanceResolver{b}, nil
}

type balanceResolver struct{ b ledger.BalanceRow }

func (b *balanceResolver) Account() gql.ID  { return gql.ID(b.b.Account) }
func (b *balanceResolver) Currency() string { return b.b.Currency }
func (b *balanceResolver) Value() string    { return b.b.Value }
func (b *balanceResolver) At() Time         { return Time{b.b.At} }

// Transactions.

type transactionFilterInput struct {
	Account  *string
	Kind     *string
	Session  *gql.ID
	From, To *Time
}

// Transactions answers transactions: the ledger's transactions that
// args.Filter selects within the caller's scope, in seq order.
func (r *resolver) Transactions(ctx context.Context, args struct {
	Filter *transactionFilterInput
	First  *int32
	After  *string
}) (*connection[*transactionResolver], error) {
	f := ledger.TransactionFilter{Scope: scope(ctx)}
	if in := args.Filter; in != nil {
		f = ledger.TransactionFilter{Scope: f.Scope, Account: str(in.Account), Kind: kindIn(in.Kind),
			From: timeOf(in.From).Time, To: timeOf(in.To).Time}
		if in.Session != nil {
			f.Session = string(*in.Session)
		}
	}
	first, after := pageArgs{args.First, args.After}.page()
	p, err := r.store.ListTransactions(ctx, f, first, after)
	if err != nil {
		return nil, fail(ctx, r.log, "transactions", err)
	}
	return newConnection(p, func(row ledger.Transaction) *transactionResolver { return &transactionResolver{r, row} }), nil
}

type transactionResolver struct {
	root *resolver
	t    ledger.Transaction
}

func (t *transactionResolver) ID() gql.ID       { return gql.ID(t.t.ID) }
func (t *transactionResolver) Seq() Long        { return Long(t.t.Seq) }
func (t *transactionResolver) Kind() string     { return strings.ToUpper(t.t.Kind) }
func (t *transactionResolver) PostedAt() Time   { return Time{t.t.PostedAt} }
func (t *transactionResolver) Hash() string     { return hex.EncodeToString(t.t.Hash) }
func (t *transactionResolver) PrevHash() string { return hex.EncodeToString(t.t.PrevHash) }
func (t *transactionResolver) Reverses() *gql.ID {
	if !t.t.Reverses.Valid {
		return nil
	}
	id := gql.ID(t.t.Reverses.V)
	return &id
}

func (t *transactionResolver) Session(ctx context.Context) (*sessionResolver, error) {
	if !t.t.Session.Valid {
		return nil, nil
	}
	return t.root.session(ctx, t.t.Session.V)
}

func (t *transactionResolver) Entries() []*entryResolver {
	out := make([]*entryResolver, len(t.t.Entries))
	for i, e := range t.t.Entries {
		out[i] = &entryResolver{e}
	}
	return out
}

type entryResolver struct{ e ledger.Entry }

func (e *entryResolver) Account() gql.ID { return gql.ID(e.e.Account) }
func (e *entryResolver) Amount() string  { return e.e.Amount }
