package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/ledger"
)

func init() {
	register(command{name: "ledger", summary: "check the ledger of payouts (verify: zero sums, gapless seqs, the hash chain)", run: runLedger})
}

// exitError is an error with its own exit status: a check that ran and
// found problems (1) differs from one that could not run (2).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// errLedgerProblems reports a ledger verify that found problems.
var errLedgerProblems = errors.New("the ledger does not verify")

func runLedger(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("ledger", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	dbURL := fs.String("database-url", "", "Postgres connection URL")
	fs.String("config", "", "YAML configuration file")
	fs.Usage = func() {
		fmt.Fprintln(sio.err, "usage: relaymeter ledger [flags] verify")
		fmt.Fprintln(sio.err, "verify exits 0 when every transaction sums to zero per currency, seqs have no gaps and the hash chain is intact, 1 when not, 2 when it could not check")
		fs.PrintDefaults()
	}
	fc, err := parseConfig(fs, args)
	if err != nil {
		return err
	}
	if len(fc.args) != 1 || fc.args[0] != "verify" {
		fs.Usage()
		return errUsage
	}
	if *dbURL == "" {
		return &exitError{2, errNoDatabase}
	}
	pool, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		return &exitError{2, fmt.Errorf("database: %w", err)}
	}
	defer pool.Close()
	r, err := ledger.New(pool).VerifyLedger(ctx)
	if err != nil {
		return &exitError{2, err}
	}
	for _, p := range r.Problems {
		fmt.Fprintf(sio.out, "transaction %d: %s\n", p.Seq, p.Detail)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(sio.out, "ledger: %d transactions, %d entries, %d problems\n", r.Transactions, r.Entries, len(r.Problems))
		return &exitError{1, errLedgerProblems}
	}
	fmt.Fprintf(sio.out, "ledger: %d transactions, %d entries, ok\n", r.Transactions, r.Entries)
	return nil
}
