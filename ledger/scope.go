package ledger

// Scope is whose rows a read may return: every read of the API side
// (Usage, UsageSeries, ListRelays, ListStreams, StreamByID, ListMessages,
// ListFindings) applies it in its SQL, on top of its filter, so that a
// caller confined to one tenant cannot reach another's rows by any filter.
//
// The zero Scope is unrestricted: what the meter, the tests and admins
// read. A Scope with Application set returns only rows of that
// application, with Supplier set only rows of that supplier (both: rows
// of both), and a Scope with Nothing set returns no row at all.
type Scope struct {
	// Application, when not empty, confines the read to the rows whose
	// application is it.
	Application string
	// Supplier, when not empty, confines the read to the rows whose
	// supplier is it.
	Supplier string
	// Nothing makes the read return no row: the scope of a caller
	// without a role.
	Nothing bool
}

// All is the unrestricted scope.
var All = Scope{}

// None is the scope that returns no row.
var None = Scope{Nothing: true}

// Unrestricted reports whether s lets every row through.
func (s Scope) Unrestricted() bool { return s == Scope{} }

// apply adds s's conditions to w, with the columns of the application and
// the supplier of the rows the query reads (e.g. "s.application").
func (s Scope) apply(w *sqlWhere, application, supplier string) {
	if s.Nothing {
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
	if scope.Nothing {
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
