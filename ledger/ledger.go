// Package ledger is relaymeter's Postgres access: the meter's writes
// (relays, messages, usage rollups, stream state, consumer offsets,
// findings) and the reads behind the GraphQL API. The schema lives in
// package migrations.
package ledger

import "github.com/jackc/pgx/v5/pgxpool"

// Store reads and writes the ledger in one Postgres database.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool; the schema must be migrated.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool returns the underlying connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
