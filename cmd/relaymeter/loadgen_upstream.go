package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// runLoadUpstream serves the simulated node (ethsim) that loadgen ws runs
// against, in a process of its own, so that a benchmark can put any proxy
// (an edge, dev, nginx) in front of the same upstream and tell the
// upstream's CPU apart from the hop's. It prints its URL on stdout, on a
// line of its own: "upstream ws://HOST:PORT/".
func runLoadUpstream(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("loadgen upstream", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	addr := fs.String("listen", "127.0.0.1:8545", "listen address (port 0: any free port)")
	heads := fs.Duration("head-interval", 0, "make a newHeads head this often (default: never, so the load is all there is)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	log, err := newLogger(sio.err, *logLevel)
	if err != nil {
		return err
	}
	interval := *heads
	if interval <= 0 {
		interval = -1
	}
	node := ethsim.New(ethsim.Config{HeadInterval: interval, Logger: log})
	srv, err := listen("upstream", *addr, node)
	if err != nil {
		return err
	}
	srv.srv.IdleTimeout = time.Minute
	fmt.Fprintf(sio.out, "upstream ws://%s/\n", srv.addr())
	log.Info("loadgen upstream: serving the simulated node", "addr", srv.addr())
	err = runUntilDone(ctx, srv.serve, func(ctx context.Context) error { node.Run(ctx); return nil })
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
