package main

import (
	"context"
	"flag"

	"github.com/relaymeter/relaymeter/graphql"
)

func init() {
	register(command{name: "serve", summary: "serve the GraphQL API (GraphiQL at /) and /metrics", run: runServe})
}

func runServe(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	httpAddr := fs.String("http", "127.0.0.1:8080", "listen address")
	dbURL := fs.String("database-url", "", "Postgres URL (required)")
	key := fs.String("admin-key", "", "API admin key clients send as Authorization: Bearer (required)")
	apiRate := fs.Float64("api-rate", graphql.DefaultRateLimit, "API requests per second each key may send on average (negative: no limit)")
	apiBurst := fs.Int("api-burst", graphql.DefaultRateBurst, "API requests each key may send at once")
	kafka := fs.String("kafka", "", "Kafka brokers of the events log, comma-separated, for the whatIf query (default: whatIf unavailable)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.String("config", "", "YAML configuration file")
	if _, err := parseConfig(fs, args); err != nil {
		return err
	}
	log, err := newLogger(sio.err, *logLevel)
	if err != nil {
		return err
	}
	if *key == "" {
		return errNoAdminKey
	}
	store, err := openStore(ctx, *dbURL, false, nil)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	reg := newRegistry()
	cfg := apiConfig(store, *key, nil, log, *apiRate, *apiBurst)
	cfg.WhatIf = whatIfFor(splitList(*kafka), store, log)
	api, err := graphql.NewHandler(cfg)
	if err != nil {
		return err
	}
	srv, err := listen("api", *httpAddr, apiMux(api, reg))
	if err != nil {
		return err
	}
	log.Info("serve: listening", "graphiql", "http://"+srv.addr()+"/")
	return runUntilDone(ctx, srv.serve)
}
