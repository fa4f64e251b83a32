package audit

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// table is a derived table audit compares: its primary key, the columns
// compared, and how the filter selects its rows.
type table struct {
	name string
	key  []string
	cols []string
	// from selects the rows of the table src (qualified) in the filter
	// ($1 from, $2 to, $3 application, $4 service; NULL or '' for none),
	// with every column of src; streams names the streams table of the
	// same side, for tables whose identity is their stream's.
	from func(src, streams string) string
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
		from: func(src, _ string) string {
			return `SELECT * FROM ` + src + ` t WHERE ` + window("t.opened_at") + ` AND ` + identity("t")
		},
	},
	{
		name: "messages",
		key:  []string{"stream_id", "seq"},
		cols: strings.Fields(`observed_at direction role method batch_size rpc_id subscription_id wire_size
			payload_size units counterpart_seq`),
		from: func(src, streams string) string {
			return `SELECT t.* FROM ` + src + ` t JOIN ` + streams + ` s ON s.stream_id = t.stream_id WHERE ` +
				window("t.observed_at") + ` AND ` + identity("s")
		},
	},
	{
		name: "usage_minutes",
		key:  []string{"minute", "service", "application", "supplier", "protocol"},
		cols: []string{"messages", "relays", "units", "bytes"},
		from: func(src, _ string) string {
			return `SELECT * FROM ` + src + ` t WHERE ` + window("t.minute") + ` AND ` + identity("t")
		},
	},
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
	args := f.args()
	replay := t.from(replayTable(t.name), replayTable("streams"))
	ledger := t.from(s.ledgerTable(t.name), s.ledgerTable("streams"))
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
