package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/relaymeter/relaymeter/ledger"
)

// table is a derived table audit compares: its primary key, the columns
// compared, and how the filter selects its rows.
type table struct {
	name string
	key  []string
	cols []string
	// from selects the table's rows in the filter ($1 from, $2 to, $3
	// application, $4 service; NULL or '' for none), every column of
	// the table as t; tbl names a table of the same side (the replay's or
	// the ledger's).
	from func(tbl func(string) string) string
}

// tables are the derived tables audit compares, in the order it compares
// them.
var tables = []table{
	{
		name: "streams",
		key:  []string{"stream_id"},
		// Every column but state_version, which counts the batches that
		// wrote the row (a replay's batches are not the meter's).
		cols: strings.Fields(`topic kafka_partition protocol service application supplier edge_id client_addr
			upstream_addr api_key_id policy_id compute_units opened_at last_seq chain last_observed_at gaps
			last_request_seq last_response_seq first_counterpart_seq policy_state messages_to_upstream
			bytes_to_upstream messages_to_client bytes_to_client relays duplicates closed_at close_reason
			close_code complete forwarded_to_upstream_seq forwarded_to_client_seq`),
		from: func(tbl func(string) string) string {
			return `SELECT * FROM ` + tbl("streams") + ` t WHERE ` + window("t.opened_at") + ` AND ` + identity("t")
		},
	},
	{
		name: "messages",
		key:  []string{"stream_id", "seq"},
		cols: strings.Fields(`observed_at direction role method batch_size rpc_id subscription_id wire_size
			payload_size units counterpart_seq`),
		from: func(tbl func(string) string) string {
			return `SELECT t.* FROM ` + tbl("messages") + ` t JOIN ` + tbl("streams") + ` s ON s.stream_id = t.stream_id WHERE ` +
				window("t.observed_at") + ` AND ` + identity("s")
		},
	},
	{
		name: "usage_minutes",
		key:  []string{"minute", "service", "application", "supplier", "protocol"},
		cols: []string{"messages", "relays", "units", "bytes"},
		from: func(tbl func(string) string) string {
			return `SELECT * FROM ` + tbl("usage_minutes") + ` t WHERE ` + window("t.minute") + ` AND ` + identity("t")
		},
	},
}

// settlementTableSpecs are the tables a settlement writes, compared when
// the ledger has settled anything. Sessions are selected by their window's
// start, transactions and entries by their session.
var settlementTableSpecs = []table{
	{
		name: "sessions",
		key:  []string{"id"},
		cols: strings.Fields(`session_id application service supplier start_height end_height relays units amount currency settled_at`),
		from: func(tbl func(string) string) string {
			return `SELECT t.* FROM ` + tbl("sessions") + ` t JOIN ` + tbl("chain_sessions") + ` c ON c.start_height = t.start_height
				WHERE ` + window("c.starts_at") + ` AND ` + identity("t")
		},
	},
	{
		name: "ledger_transactions",
		key:  []string{"seq"},
		cols: strings.Fields(`id kind session reverses posted_at prev_hash hash`),
		from: func(tbl func(string) string) string {
			return `SELECT t.* FROM ` + tbl("ledger_transactions") + ` t WHERE ` + bySession("t.session", tbl)
		},
	},
	{
		name: "ledger_entries",
		key:  []string{"transaction_seq", "account"},
		cols: []string{"amount"},
		from: func(tbl func(string) string) string {
			return `SELECT t.* FROM ` + tbl("ledger_entries") + ` t JOIN ` + tbl("ledger_transactions") + ` x ON x.seq = t.transaction_seq
				WHERE ` + bySession("x.session", tbl)
		},
	},
	{
		// The late relays and take-backs: the replay's are those of the
		// ledger whose message it has, resolved by its own settlement, so
		// a fabricated one is extra and one adjusted elsewhere differs.
		// Other findings are the meter's, and depend on its timing.
		name: "findings",
		key:  []string{"kind", "stream_id", "seq"},
		cols: []string{"resolved_at", "transaction_id"},
		from: func(tbl func(string) string) string {
			return `SELECT t.* FROM ` + tbl("findings") + ` t LEFT JOIN ` + tbl("streams") + ` s ON s.stream_id = t.stream_id
				WHERE t.kind IN ('` + ledger.FindingLateRelay + `', '` + ledger.FindingUncrossedAfterSettlement + `') AND ` +
				window("t.observed_at") + ` AND ` + identity("s")
		},
	},
	{
		name: "accounts",
		key:  []string{"id"},
		cols: []string{"kind", "owner", "currency"},
		// Accounts are few: all are compared, whatever the filter.
		from: func(tbl func(string) string) string { return `SELECT * FROM ` + tbl("accounts") + ` t` },
	},
}

// bySession is the filter on a row by its session, the session column c:
// every row without a filter, else those of the sessions it selects.
func bySession(c string, tbl func(string) string) string {
	return `(($1::timestamptz IS NULL AND $2::timestamptz IS NULL AND $3::text = '' AND $4::text = '') OR ` + c + ` IN (
		SELECT s.id FROM ` + tbl("sessions") + ` s JOIN ` + tbl("chain_sessions") + ` c ON c.start_height = s.start_height
		WHERE ` + window("c.starts_at") + ` AND ` + identity("s") + `))`
}

// window is the filter's time range on column c.
func window(c string) string {
	return `($1::timestamptz IS NULL OR ` + c + ` >= $1) AND ($2::timestamptz IS NULL OR ` + c + ` < $2)`
}

// identity is the filter's application and service on alias a.
func identity(a string) string {
	return `($3::text = '' OR ` + a + `.application = $3) AND ($4::text = '' OR ` + a + `.service = $4)`
}

// difference is one row the replay and the ledger disagree on.
type difference struct {
	kind            string // missing, extra or differs
	table           string
	keys            []byte // JSON
	expected, found []byte // JSON, nil for none
}

// compare walks the rows of t that differ between the replay (expected)
// and the ledger (found), in primary key order, passing each to fn; it
// returns the number of the replay's rows in the filter. The rows stream
// from Postgres: memory does not grow with the table.
func (s *scratch) compare(ctx context.Context, t table, f Filter, fn func(difference) error) (int64, error) {
	replay, ledger := t.from(s.replayTable), t.from(s.ledgerTable)
	var args []any
	if strings.Contains(replay, "$1") { // a table the filter does not select has none
		args = f.args()
	}
	var compared int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (`+replay+`) r`, args...).Scan(&compared); err != nil {
		return 0, fmt.Errorf("audit: compare %s: %w", t.name, err)
	}
	var on, keys, order, rc, pc []string
	for _, k := range t.key {
		on = append(on, "r."+k+" = p."+k)
		keys = append(keys, "'"+k+"', coalesce(r."+k+", p."+k+")")
		order = append(order, "coalesce(r."+k+", p."+k+")")
	}
	row := func(a string) string {
		var kv []string
		for _, c := range append(append([]string{}, t.key...), t.cols...) {
			kv = append(kv, "'"+c+"', "+a+"."+c)
		}
		return "jsonb_build_object(" + strings.Join(kv, ", ") + ")"
	}
	for _, c := range t.cols {
		rc, pc = append(rc, "r."+c), append(pc, "p."+c)
	}
	k := t.key[0]
	q := `SELECT CASE WHEN p.` + k + ` IS NULL THEN 'missing' WHEN r.` + k + ` IS NULL THEN 'extra' ELSE 'differs' END,
			jsonb_build_object(` + strings.Join(keys, ", ") + `)::text,
			CASE WHEN r.` + k + ` IS NULL THEN NULL ELSE ` + row("r") + `::text END,
			CASE WHEN p.` + k + ` IS NULL THEN NULL ELSE ` + row("p") + `::text END
		FROM (` + replay + `) r FULL JOIN (` + ledger + `) p ON ` + strings.Join(on, " AND ") + `
		WHERE r.` + k + ` IS NULL OR p.` + k + ` IS NULL
			OR ROW(` + strings.Join(rc, ", ") + `) IS DISTINCT FROM ROW(` + strings.Join(pc, ", ") + `)
		ORDER BY ` + strings.Join(order, ", ")
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("audit: compare %s: %w", t.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		d := difference{table: t.name}
		var keys string
		var exp, found *string
		if err := rows.Scan(&d.kind, &keys, &exp, &found); err != nil {
			return 0, fmt.Errorf("audit: compare %s: %w", t.name, err)
		}
		d.keys = []byte(keys)
		if exp != nil {
			d.expected = []byte(*exp)
		}
		if found != nil {
			d.found = []byte(*found)
		}
		if err := fn(d); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("audit: compare %s: %w", t.name, err)
	}
	return compared, nil
}

// args are the filter's query arguments, $1 to $4.
func (f Filter) args() []any {
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	return []any{at(f.From), at(f.To), f.Application, f.Service}
}
