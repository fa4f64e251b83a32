package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
)

// startRun records a run as running and returns its id.
func startRun(ctx context.Context, pool *pgxpool.Pool, topic string, f Filter) (int64, error) {
	a := f.args()
	var id int64
	err := pool.QueryRow(ctx, `INSERT INTO audit_runs (topic, window_from, window_to, application, service)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, topic, a[0], a[1], f.Application, f.Service).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("audit: record run (is the database migrated? relaymeter migrate up): %w", err)
	}
	return id, nil
}

// finishRun records what a run found, or why it failed.
func finishRun(ctx context.Context, pool *pgxpool.Pool, sum *Summary, sps []span, failed error) error {
	offsets := map[string][2]int64{}
	for _, sp := range sps {
		offsets[strconv.Itoa(int(sp.Partition))] = [2]int64{sp.First, sp.End}
	}
	compared := map[string]int64{}
	var missing, extra, differs int64
	for _, t := range sum.Tables {
		compared[t.Table] = t.Compared
		missing, extra, differs = missing+t.Missing, extra+t.Extra, differs+t.Differs
	}
	result, why := "match", ""
	switch {
	case failed != nil:
		result, why = "failed", failed.Error()
	case missing+extra+differs > 0:
		result = "differs"
	}
	o, _ := json.Marshal(offsets)
	c, _ := json.Marshal(compared)
	_, err := pool.Exec(ctx, `UPDATE audit_runs SET finished_at = now(), offsets = $2, events = $3, compared = $4,
		missing = $5, extra = $6, differs = $7, result = $8, error = $9 WHERE id = $1`,
		sum.RunID, string(o), sum.Events, string(c), missing, extra, differs, result, why)
	if err != nil {
		return fmt.Errorf("audit: record run %d: %w", sum.RunID, err)
	}
	return nil
}

// recorder writes a table's differences as audit_findings rows, in
// batches, up to max of them.
type recorder struct {
	pool                  *pgxpool.Pool
	run                   int64
	max, n                int
	kind, table           []string
	keys, expected, found []*string
}

func newRecorder(pool *pgxpool.Pool, run int64, max int) *recorder {
	return &recorder{pool: pool, run: run, max: max}
}

const recordBatch = 500

func (r *recorder) add(ctx context.Context, d difference) error {
	if r.n >= r.max {
		return nil
	}
	r.n++
	text := func(b []byte) *string {
		if b == nil {
			return nil
		}
		s := string(b)
		return &s
	}
	r.kind, r.table = append(r.kind, d.kind), append(r.table, d.table)
	r.keys, r.expected, r.found = append(r.keys, text(d.keys)), append(r.expected, text(d.expected)), append(r.found, text(d.found))
	if len(r.kind) >= recordBatch {
		return r.flush(ctx)
	}
	return nil
}

func (r *recorder) flush(ctx context.Context) error {
	if len(r.kind) == 0 {
		return nil
	}
	_, err := r.pool.Exec(ctx, `INSERT INTO audit_findings (run_id, kind, table_name, keys, expected, found)
		SELECT $1, * FROM unnest($2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::jsonb[])`,
		r.run, r.kind, r.table, r.keys, r.expected, r.found)
	if err != nil {
		return fmt.Errorf("audit: record findings: %w", err)
	}
	r.kind, r.table, r.keys, r.expected, r.found = r.kind[:0], r.table[:0], r.keys[:0], r.expected[:0], r.found[:0]
	return nil
}
