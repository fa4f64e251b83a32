package ledger_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/internal/settletest"
	"github.com/relaymeter/relaymeter/ledger"
)

// BenchmarkSettlementReads times a page of each settlement read over
// settletest.Bulk's ledger (100,000 messages, 4,900 settled sessions and
// transactions), as the API asks them:
//
//	go test ./ledger -run '^$' -bench BenchmarkSettlementReads -benchtime 50x
//
// With RELAYMETER_EXPLAIN=1, the plans of the statements slower than 20 ms
// are printed (auto_explain, from the server's log).
func BenchmarkSettlementReads(b *testing.B) {
	pool, url := pgtest.DB(b)
	l := settletest.Bulk(b, pool, 50, 100, true)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	s := l.Store
	if os.Getenv("RELAYMETER_EXPLAIN") != "" {
		s = explaining(b, url)
	}
	app, sup := ledger.Scope{Application: "app3"}, ledger.Scope{Supplier: "sup5"}
	deep, err := s.ListSessions(ctx, ledger.SessionFilter{Scope: sup}, 500, "")
	if err != nil || !deep.HasNextPage {
		b.Fatalf("sessions of sup5: %d, %v", len(deep.Items), err)
	}
	settled := deep.Items[250]
	for _, q := range []struct {
		name string
		run  func() (int, error)
	}{
		{"sessions/admin", func() (int, error) {
			p, err := s.ListSessions(ctx, ledger.SessionFilter{Scope: ledger.All}, 50, "")
			return len(p.Items), err
		}},
		{"sessions/application", func() (int, error) {
			p, err := s.ListSessions(ctx, ledger.SessionFilter{Scope: app}, 50, "")
			return len(p.Items), err
		}},
		{"sessions/supplier-deep", func() (int, error) {
			p, err := s.ListSessions(ctx, ledger.SessionFilter{Scope: sup}, 50, deep.EndCursor())
			return len(p.Items), err
		}},
		{"sessions/open", func() (int, error) {
			p, err := s.ListSessions(ctx, ledger.SessionFilter{Scope: ledger.All, State: ledger.SessionOpen}, 50, "")
			return len(p.Items), err
		}},
		{"session/settled", func() (int, error) {
			_, found, err := s.SessionByID(ctx, sup, settled.ID)
			return map[bool]int{true: 1}[found], err
		}},
		{"payouts/application", func() (int, error) {
			p, err := s.ListPayouts(ctx, ledger.PayoutFilter{Scope: app}, 50, "")
			return len(p.Items), err
		}},
		{"payouts/supplier-session", func() (int, error) {
			p, err := s.ListPayouts(ctx, ledger.PayoutFilter{Scope: sup, Session: settled.ID}, 50, "")
			return len(p.Items), err
		}},
		{"transactions/admin", func() (int, error) {
			p, err := s.ListTransactions(ctx, ledger.TransactionFilter{Scope: ledger.All}, 50, "")
			return len(p.Items), err
		}},
		{"transactions/application", func() (int, error) {
			p, err := s.ListTransactions(ctx, ledger.TransactionFilter{Scope: app}, 50, "")
			return len(p.Items), err
		}},
		{"accounts/admin", func() (int, error) {
			p, err := s.ListAccounts(ctx, ledger.AccountFilter{Scope: ledger.All}, 50, "")
			return len(p.Items), err
		}},
		{"balance/supplier", func() (int, error) {
			_, found, err := s.AccountBalance(ctx, sup, "supplier:sup5:upokt", settletest.At(3000))
			return map[bool]int{true: 1}[found], err
		}},
	} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				n, err := q.run()
				if err != nil || n == 0 {
					b.Fatalf("%d rows, %v", n, err)
				}
			}
		})
	}
}

// explaining returns a store on url whose connections log the plans of
// their statements slower than 20 ms, and prints the log's new lines when
// b ends.
func explaining(b *testing.B, url string) *ledger.Store {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `LOAD 'auto_explain'; SET auto_explain.log_min_duration = '20ms';
			SET auto_explain.log_analyze = on; SET auto_explain.log_nested_statements = on`)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var dir string
	if err := pool.QueryRow(ctx, `SHOW data_directory`).Scan(&dir); err != nil {
		b.Fatal(err)
	}
	log := dir + ".log"
	before, _ := os.ReadFile(log)
	b.Cleanup(func() {
		pool.Close()
		after, _ := os.ReadFile(log)
		if len(after) > len(before) {
			b.Log(strings.TrimSpace(string(after[len(before):])))
		}
	})
	return ledger.New(pool)
}
