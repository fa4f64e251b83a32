package pgtest

import (
	"context"
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestDatabasesAreMigratedAndIsolated checks each test gets the schema and
// that one test's rows are invisible to another's database.
func TestDatabasesAreMigratedAndIsolated(t *testing.T) {
	ctx := context.Background()
	a, _ := DB(t)
	b, _ := DB(t)
	if _, err := a.Exec(ctx, "INSERT INTO policies (name, version) VALUES ('message', 1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM policies").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("second database sees %d policies from the first", n)
	}
	if err := a.QueryRow(ctx, "SELECT count(*) FROM policies").Scan(&n); err != nil || n != 1 {
		t.Fatalf("first database has %d policies (%v), want 1", n, err)
	}
}
