package main

import (
	"context"
	"flag"

	"github.com/relaymeter/relaymeter/meter"
)

func init() {
	register(command{name: "meter", summary: "run a metering consumer: Kafka events into Postgres, exactly once", run: runMeter})
}

func runMeter(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("meter", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	kafka := fs.String("kafka", "", "Kafka brokers, comma-separated (required)")
	dbURL := fs.String("database-url", "", "Postgres URL (required)")
	group := fs.String("group", "relaymeter-meter", "Kafka consumer group")
	session := fs.Duration("group-session-timeout", meter.DefaultSessionTimeout, "how long the group waits for a meter that stopped answering before giving its partitions to the others")
	idle := fs.Duration("stream-idle-timeout", meter.DefaultStreamIdle, "close a stream as abandoned after this long without an event (its edge was killed)")
	metricsAddr := fs.String("http", "", "serve /metrics here (default: not served)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	var cf chainFlags
	cf.register(fs, meter.DefaultBlockTime, meter.DefaultSessionBlocks)
	fs.String("config", "", "YAML configuration file (services are synced into Postgres)")
	fc, err := parseConfig(fs, args)
	if err != nil {
		return err
	}
	log, err := newLogger(sio.err, *logLevel)
	if err != nil {
		return err
	}
	if *kafka == "" {
		return errNoKafka
	}
	store, err := openStore(ctx, *dbURL, false, fc.Services)
	if err != nil {
		return err
	}
	defer store.Pool().Close()
	ch, sc, err := cf.build(ctx)
	if err != nil {
		return err
	}
	reg := newRegistry()
	m, err := meter.New(meter.Config{Brokers: splitList(*kafka), Topic: topicMessages, GroupID: *group, Store: store,
		StreamIdleTimeout: *idle, SessionTimeout: *session, Chain: ch, Settlement: sc, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	fns := []func(context.Context) error{m.Run}
	if *metricsAddr != "" {
		ms, err := listen("metrics", *metricsAddr, apiMux(nil, reg))
		if err != nil {
			return err
		}
		fns = append(fns, ms.serve)
	}
	log.Info("meter: running", "group", *group, "topic", topicMessages)
	return runUntilDone(ctx, fns...)
}
