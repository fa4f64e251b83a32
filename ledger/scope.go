package ledger

// Scope is whose rows a read may return: every read of the API side
// (Usage, UsageSeries, ListRelays, ListStreams, StreamByID, ListMessages,
// ListFindings, ListSessions, SessionByID, ListPayouts, ListAccounts,
// AccountBalance, ListTransactions, TransactionBySeq) applies it in its
// SQL, on top of its filter, so that a caller confined to one tenant cannot
// reach another's rows by any filter. The ledger's accounts, and the
// transactions and payouts read through them, belong to one owner each: a
// Scope of both an application and a supplier sees none of them.
//
// Scopes fail closed: the zero Scope returns no row, so a read that forgot
// its scope shows nothing rather than everything. All is every row (the
// meter, admins, tests); a Scope with Application set returns only rows of
// that application, with Supplier set only rows of that supplier (both:
// rows of both).
type Scope struct {
	// Application, when not empty, confines the read to the rows whose
	// application is it.
	Application string
	// Supplier, when not empty, confines the read to the rows whose
	// supplier is it.
	Supplier string

	all bool
}

// All is the unrestricted scope.
var All = Scope{all: true}

// None is the scope that returns no row (the zero Scope).
var None = Scope{}

// Unrestricted reports whether s lets every row through.
func (s Scope) Unrestricted() bool { return s.all }

// Empty reports whether s lets no row through.
func (s Scope) Empty() bool { return !s.all && s.Application == "" && s.Supplier == "" }

// apply adds s's conditions to w, with the columns of the application and
// the supplier of the rows the query reads (e.g. "s.application").
func (s Scope) apply(w *sqlWhere, application, supplier string) {
	switch {
	case s.all:
		return
	case s.Empty():
		w.add("false")
		return
	}
	if s.Application != "" {
		w.add(application+" = ?", s.Application)
	}
	if s.Supplier != "" {
		w.add(supplier+" = ?", s.Supplier)
	}
}

// streamVisible returns a condition, for a query adding to w, that the
// stream whose id is the column streamID is one scope lets through.
func streamVisible(w *sqlWhere, scope Scope, streamID string) string {
	switch {
	case scope.all:
		return "true"
	case scope.Empty():
		return "false"
	}
	cond := "EXISTS (SELECT 1 FROM streams vs WHERE vs.stream_id = " + streamID
	if scope.Application != "" {
		cond += " AND vs.application = " + w.param(scope.Application)
	}
	if scope.Supplier != "" {
		cond += " AND vs.supplier = " + w.param(scope.Supplier)
	}
	return cond + ")"
}
