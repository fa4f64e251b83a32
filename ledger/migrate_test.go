package ledger

import (
	"context"
	"strings"
	"testing"

	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/migrations"
)

// TestRelayIndexesMigration: 00002 moves the relays primary key to (stream_id,
// seq, unit_index) with a BRIN index on observed_at, and its Down restores
// the 00001 indexes, with rows in the table both ways.
func TestRelayIndexesMigration(t *testing.T) {
	pool, _ := pgtest.DB(t)
	s, ctx := New(pool), context.Background()
	if err := s.Commit(ctx, meterBatch(NoOffset, 1, 1)); err != nil {
		t.Fatal(err)
	}
	indexes := func() string {
		t.Helper()
		var got string
		if err := pool.QueryRow(ctx, `SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes
			WHERE tablename = 'relays'`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	const up = "CREATE UNIQUE INDEX relays_id_key ON public.relays USING btree (id); " +
		"CREATE INDEX relays_observed_at ON public.relays USING brin (observed_at); " +
		"CREATE UNIQUE INDEX relays_pkey ON public.relays USING btree (stream_id, seq, unit_index)"
	const down = "CREATE UNIQUE INDEX relays_id_key ON public.relays USING btree (id); " +
		"CREATE INDEX relays_observed_at ON public.relays USING btree (observed_at); " +
		"CREATE UNIQUE INDEX relays_pkey ON public.relays USING btree (relay_id); " +
		"CREATE INDEX relays_stream ON public.relays USING btree (stream_id, seq)"
	if got := indexes(); got != up {
		t.Fatalf("relays indexes after 00002:\n%s\nwant\n%s", got, up)
	}
	if err := migrations.Down(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if got := indexes(); got != down {
		t.Fatalf("relays indexes after 00002 down:\n%s\nwant\n%s", got, down)
	}
	if err := migrations.Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if got := indexes(); got != up {
		t.Fatalf("relays indexes after 00002 up again:\n%s\nwant\n%s", got, up)
	}
	// The same relay twice is still refused, by the relays primary key.
	again := meterBatch(1, 2, 1)
	again.Messages = nil
	if err := s.Commit(ctx, again); err == nil || !strings.Contains(err.Error(), "relays_pkey") {
		t.Fatalf("a relay committed twice: err = %v, want a relays_pkey violation", err)
	}
}
