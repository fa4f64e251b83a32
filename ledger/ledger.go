// Package ledger is relaymeter's Postgres access: it stores what the meter
// establishes (streams, messages, findings, quarantined records, consumer
// offsets), derives what can be derived (a relay is a unit of a message;
// usage rollups are sums of messages), and answers the reads behind the
// GraphQL API. The schema lives in package migrations.
package ledger

import (
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Store reads and writes the ledger in one Postgres database.
type Store struct {
	pool *pgxpool.Pool

	// policies caches policies rows by id: they are immutable.
	policies sync.Map // int64 → Policy
}

// New returns a Store over pool; the schema must be migrated.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool returns the underlying connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// safeText returns s as Postgres text takes it: valid UTF-8 without NUL.
// The meter cleans what it takes from events; this guards the texts the
// ledger is handed that may quote them (finding details, errors).
func safeText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
