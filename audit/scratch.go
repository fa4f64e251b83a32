package audit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/ledger"
)

// scratch is a Postgres session of its own holding temporary copies of
// the tables a meter's batch writes (empty at first): a replay commits its
// batches there with the ledger's own Commit, so that every derived row
// (usage rollups with the messages that did not cross taken back, stream
// state) is computed by the code that computed the original, and then
// compared with the original in SQL. Temporary tables are private to the
// session, are not WAL-logged and vanish with it: nothing of the ledger is
// written. Every other table (services, policies, tariffs…) is the
// ledger's own, read through the search path.
type scratch struct {
	pool   *pgxpool.Pool   // one connection, never replaced
	store  *ledger.Store   // the ledger's code over the scratch tables
	schema string          // the ledger's schema, e.g. public
	tables map[string]bool // the scratch's own
}

// scratchTables are the tables a batch's commit writes.
var scratchTables = []string{"consumer_offsets", "streams", "messages", "usage_minutes", "findings", "quarantine",
	"settlement_state"}

// newScratch opens the scratch session on the database of pool, with
// temporary copies of tables plus the batch tables.
func newScratch(ctx context.Context, pool *pgxpool.Pool, tables ...string) (*scratch, error) {
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, fmt.Errorf("audit: scratch: %w", err)
	}
	cfg := pool.Config().Copy()
	cfg.MinConns, cfg.MaxConns = 0, 1
	// The temporary tables live as long as the one connection: it must
	// never be recycled, and a second one (after it broke) must not pass
	// for it.
	cfg.MaxConnLifetime, cfg.MaxConnIdleTime = 365*24*time.Hour, 365*24*time.Hour
	var conns atomic.Int32
	after := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if conns.Add(1) > 1 {
			return errors.New("audit: scratch: the scratch session was lost (its connection closed)")
		}
		if after != nil {
			return after(ctx, c)
		}
		return nil
	}
	sp, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("audit: scratch: %w", err)
	}
	s := &scratch{pool: sp, store: ledger.New(sp), schema: schema, tables: map[string]bool{}}
	if err := s.create(ctx, append(scratchTables, tables...)); err != nil {
		sp.Close()
		return nil, err
	}
	// Nothing settled: a replayed batch has no late relay.
	if _, err := sp.Exec(ctx, `INSERT INTO pg_temp.settlement_state DEFAULT VALUES`); err != nil {
		sp.Close()
		return nil, fmt.Errorf("audit: scratch: %w", err)
	}
	return s, nil
}

// create makes an empty temporary copy of each table (columns, defaults,
// constraints and indexes; no triggers, no foreign keys). A column whose
// default draws from a sequence of the ledger draws from a temporary one.
func (s *scratch) create(ctx context.Context, tables []string) error {
	for _, t := range tables {
		s.tables[t] = true
		src := pgx.Identifier{s.schema, t}.Sanitize()
		if _, err := s.pool.Exec(ctx, `CREATE TEMP TABLE `+pgx.Identifier{t}.Sanitize()+` (LIKE `+src+` INCLUDING ALL)`); err != nil {
			return fmt.Errorf("audit: scratch table %s: %w", t, err)
		}
		rows, err := s.pool.Query(ctx, `SELECT a.attname FROM pg_attribute a
			JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
			WHERE a.attrelid = $1::regclass AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'`, "pg_temp."+t)
		if err != nil {
			return fmt.Errorf("audit: scratch table %s: %w", t, err)
		}
		cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("audit: scratch table %s: %w", t, err)
		}
		for _, c := range cols {
			seq := pgx.Identifier{"pg_temp", t + "_" + c + "_seq"}.Sanitize()
			if _, err := s.pool.Exec(ctx, `CREATE TEMP SEQUENCE `+pgx.Identifier{t + "_" + c + "_seq"}.Sanitize()); err != nil {
				return fmt.Errorf("audit: scratch sequence %s.%s: %w", t, c, err)
			}
			if _, err := s.pool.Exec(ctx, `ALTER TABLE `+pgx.Identifier{"pg_temp", t}.Sanitize()+` ALTER COLUMN `+
				pgx.Identifier{c}.Sanitize()+` SET DEFAULT nextval('`+seq+`')`); err != nil {
				return fmt.Errorf("audit: scratch sequence %s.%s: %w", t, c, err)
			}
		}
	}
	return nil
}

// ledgerTable is the ledger's (not the scratch's) table t, qualified.
func (s *scratch) ledgerTable(t string) string { return pgx.Identifier{s.schema, t}.Sanitize() }

// replayTable is the replay's table t, qualified: the scratch's copy, or
// the ledger's table for one the replay does not write (chain_sessions).
func (s *scratch) replayTable(t string) string {
	if s.tables[t] {
		return pgx.Identifier{"pg_temp", t}.Sanitize()
	}
	return s.ledgerTable(t)
}

func (s *scratch) close() { s.pool.Close() }
