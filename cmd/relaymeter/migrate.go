package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/relaymeter/relaymeter/migrations"
)

func init() {
	register(command{name: "migrate", summary: "apply (up), roll back (down) or list (status) the Postgres migrations", run: runMigrate})
}

func runMigrate(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	dbURL := fs.String("database-url", "", "Postgres connection URL")
	fs.String("config", "", "YAML configuration file")
	fs.Usage = func() {
		fmt.Fprintln(sio.err, "usage: relaymeter migrate [flags] up|down|status")
		fs.PrintDefaults()
	}
	fc, err := parseConfig(fs, args)
	if err != nil {
		return err
	}
	if len(fc.args) != 1 {
		fs.Usage()
		return errUsage
	}
	if *dbURL == "" {
		return errNoDatabase
	}
	pool, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	switch fc.args[0] {
	case "up":
		return migrations.Up(ctx, pool)
	case "down":
		return migrations.Down(ctx, pool)
	case "status":
		return migrations.Status(ctx, pool, sio.out)
	default:
		fs.Usage()
		return errUsage
	}
}
