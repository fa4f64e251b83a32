package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymeter/relaymeter/internal/kafkatest"
	"github.com/relaymeter/relaymeter/internal/pgtest"
	"github.com/relaymeter/relaymeter/ledger"
)

// TestChainConfig: the chain: mapping of the YAML file sets the chain
// flags, under the flags and the environment, and a misspelt key in it is
// an error.
func TestChainConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte("chain:\n  source: cometbft\n  url: http://node:26657\n  block_time: 30s\n  session_blocks: 6\n  grace_blocks: 2\n"), 0o600)
	t.Setenv("RELAYMETER_GRACE_BLOCKS", "3")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cf chainFlags
	cf.register(fs, time.Minute, 10)
	fs.String("config", "", "")
	if _, err := parseConfig(fs, []string{"--config", path, "--session-blocks", "8"}); err != nil {
		t.Fatal(err)
	}
	want := chainFlags{source: "cometbft", url: "http://node:26657", blockTime: 30 * time.Second, sessionBlocks: 8, graceBlocks: 3,
		genesis: "2025-01-01T00:00:00Z"}
	if cf != want {
		t.Fatalf("chain flags %+v, want %+v", cf, want)
	}
	os.WriteFile(path, []byte("chain:\n  sourse: clock\n"), 0o600)
	fs2 := flag.NewFlagSet("t", flag.ContinueOnError)
	fs2.SetOutput(io.Discard)
	var cf2 chainFlags
	cf2.register(fs2, time.Minute, 10)
	fs2.String("config", "", "")
	if _, err := parseConfig(fs2, []string{"--config", path}); err == nil || !strings.Contains(err.Error(), "sourse") {
		t.Fatalf("a misspelt chain key: %v", err)
	}
}

// TestLedgerVerifyCommand: relaymeter ledger verify exits 0 on an intact
// ledger, 1 once an entry is altered behind the triggers' back, and 2
// when it cannot reach the database.
func TestLedgerVerifyCommand(t *testing.T) {
	pool, url := pgtest.DB(t)
	ctx := context.Background()
	tx := ledger.Transaction{Seq: 1, ID: "t1", Kind: ledger.KindSettlement, PostedAt: time.Now().UTC().Truncate(time.Microsecond),
		Entries: []ledger.Entry{{Account: "application:a:upokt", Amount: "-2"}, {Account: "supplier:s:upokt", Amount: "2"}}}
	prev := make([]byte, 32)
	hash, err := ledger.TransactionHash(prev, &tx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO accounts (id, kind, owner, currency) VALUES ('application:a:upokt', 'application', 'a', 'upokt'),
			('supplier:s:upokt', 'supplier', 's', 'upokt')`, nil},
		{`INSERT INTO ledger_transactions (seq, id, kind, posted_at, prev_hash, hash) VALUES (1, 't1', 'settlement', $1, $2, $3)`,
			[]any{tx.PostedAt, prev, hash}},
		{`INSERT INTO ledger_entries VALUES (1, 'application:a:upokt', -2), (1, 'supplier:s:upokt', 2)`, nil},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	verify := func(url string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"ledger", "verify", "--database-url", url}, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
		return code, out.String() + errOut.String()
	}
	if code, out := verify(url); code != 0 || !strings.Contains(out, "1 transactions, 2 entries, ok") {
		t.Fatalf("intact ledger: exit %d\n%s", code, out)
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE ledger_entries DISABLE TRIGGER USER;
		UPDATE ledger_entries SET amount = 3 WHERE account = 'supplier:s:upokt';
		ALTER TABLE ledger_entries ENABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	code, out := verify(url)
	if code != 1 || !strings.Contains(out, "does not recompute") || !strings.Contains(out, "sum to 1 upokt") {
		t.Fatalf("altered entry: exit %d\n%s", code, out)
	}
	if code, out := verify("postgres://nobody@127.0.0.1:1/none?connect_timeout=2"); code != 2 {
		t.Fatalf("no database: exit %d\n%s", code, out)
	}
}

// TestDevDemoSettles runs dev --demo with its default chain (5 s blocks, 4
// per session, 1 grace block) and sees a session settled, with relays, the
// demo tariff's amount and a positive supplier balance, within a minute of
// the start (the first settles in about half a minute).
func TestDevDemoSettles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, dbURL := pgtest.DB(t)
	kc := kafkatest.Start(t, kafkatest.Options{Partitions: 4, Topics: []string{topicMessages, topicClaims}})
	out := &lockedBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	began := time.Now()
	go func() {
		done <- run(runCtx, []string{"dev", "--demo", "--data-dir", t.TempDir(), "--ws-listen", freeAddr(t), "--http", freeAddr(t),
			"--database-url", dbURL, "--kafka", strings.Join(kc.Brokers, ","), "--log-level", "warn"},
			stdio{in: strings.NewReader(""), out: out, err: out})
	}()
	exited := false
	defer func() {
		if !exited {
			stop()
			<-done
		}
	}()
	var supplier, app string
	var relays int64
	var amount string
	for {
		err := pool.QueryRow(ctx, `SELECT supplier, application, relays, trim_scale(amount)::text FROM sessions
			WHERE relays > 0 AND service = 'eth' ORDER BY start_height LIMIT 1`).Scan(&supplier, &app, &relays, &amount)
		if err == nil {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("dev exited %d:\n%s", code, out)
		case <-ctx.Done():
			t.Fatalf("no settled session: %v\n%s", err, out)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(began) > 60*time.Second {
			t.Fatalf("no session settled within a minute:\n%s", out)
		}
	}
	t.Logf("first session settled %.1f s after dev started: %d relays of %s, %s upokt", time.Since(began).Seconds(), relays, app, amount)
	if amount == "0" {
		t.Fatalf("the session costs nothing: the demo tariff is missing")
	}
	b, err := ledger.New(pool).Balance(ctx, ledger.AccountID(ledger.AccountSupplier, supplier, "upokt"), ledger.Stream{}.ClosedAt)
	if err != nil || strings.HasPrefix(b, "-") || b == "0" {
		t.Fatalf("supplier balance %s, %v: want positive", b, err)
	}
	if r, err := ledger.New(pool).VerifyLedger(ctx); err != nil || len(r.Problems) > 0 {
		t.Fatalf("ledger verify: %+v, %v", r, err)
	}

	// Stopped, dev leaves nothing recorded and unmetered (the meter drains
	// the log after its edges stop), so an audit of what it left matches.
	stop()
	exited = true
	if code := <-done; code != 0 {
		t.Fatalf("dev exited %d:\n%s", code, out)
	}
	var aout, aerr bytes.Buffer
	code := run(ctx, []string{"audit", "--kafka", strings.Join(kc.Brokers, ","), "--database-url", dbURL},
		stdio{in: strings.NewReader(""), out: &aout, err: &aerr})
	if code != 0 || !strings.Contains(aout.String(), "result: match") {
		t.Fatalf("audit after dev stopped: exit %d\n%s%s\ndev:\n%s", code, aout.String(), aerr.String(), out)
	}
}
