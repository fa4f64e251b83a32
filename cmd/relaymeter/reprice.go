package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relaymeter/relaymeter/audit"
	"github.com/relaymeter/relaymeter/graphql"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
)

func init() {
	register(command{name: "reprice", summary: "what a service's traffic in a window would cost under a proposed policy or tariff (writes nothing)", run: runReprice})
}

func runReprice(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("reprice", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	var inf infraFlags
	inf.register(fs)
	service := fs.String("service", "", "the service to reprice (required)")
	pol := fs.String("policy", "", `proposed policy as JSON, e.g. {"name": "method", "version": 1, "params": {"default": 1}}`)
	tariff := fs.String("tariff", "", `proposed tariff as JSON, e.g. {"price": "0.000001", "currency": "upokt"}`)
	from := fs.String("from", "", "window start (RFC 3339, a whole minute; required)")
	to := fs.String("to", "", "window end, excluded (RFC 3339, a whole minute; required)")
	idle := fs.Duration("stream-idle-timeout", meter.DefaultStreamIdle, "the meter's --stream-idle-timeout")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	fs.String("config", "", "YAML configuration file")
	fs.Usage = func() {
		fmt.Fprintln(sio.err, "usage: relaymeter reprice --service S (--policy JSON | --tariff JSON) --from T --to T [flags]")
		fs.PrintDefaults()
	}
	if _, err := parseConfig(fs, args); err != nil {
		return err
	}
	p := audit.Proposal{Service: *service}
	var err error
	switch {
	case *service == "":
		err = errors.New("--service is required")
	case (*pol == "") == (*tariff == ""):
		err = errors.New("give --policy or --tariff, one of them")
	case *pol != "":
		p.Policy, err = audit.ParsePolicy([]byte(*pol))
	default:
		p.Tariff, err = audit.ParsePrice([]byte(*tariff))
	}
	if err != nil {
		return err
	}
	w := windowFlags{from: *from, to: *to}
	f, err := w.filter()
	if err != nil {
		return err
	}
	if f.From.IsZero() || f.To.IsZero() {
		return errors.New("--from and --to are required")
	}
	log, err := newLogger(sio.err, *logLevel)
	if err != nil {
		return err
	}
	brokers, pool, stop, err := inf.open(ctx, log)
	if err != nil {
		return err
	}
	defer stop()
	prog := newProgress(sio.err, "replaying")
	rows, err := audit.WhatIf(ctx, audit.WhatIfConfig{Config: audit.Config{Brokers: brokers, Topic: topicMessages, Pool: pool,
		StreamIdleTimeout: *idle, Progress: prog.update, Logger: log}, Proposal: p, From: f.From, To: f.To})
	prog.done()
	if err != nil {
		return err
	}
	printWhatIf(sio.out, p, f.From, f.To, rows)
	return nil
}

// whatIfFor returns the API's whatIf over the events log at brokers and
// the ledger of store; nil (whatIf unavailable) without brokers.
func whatIfFor(brokers []string, store *ledger.Store, log *slog.Logger) graphql.WhatIf {
	if len(brokers) == 0 {
		return nil
	}
	return &audit.Pricer{Config: audit.Config{Brokers: brokers, Topic: topicMessages, Pool: store.Pool(), Logger: log}}
}

// printWhatIf writes a what-if's table: per application, relays, units
// and amounts now and proposed.
func printWhatIf(out io.Writer, p audit.Proposal, from, to time.Time, rows []audit.WhatIfRow) {
	what := ""
	if p.Policy != nil {
		what = fmt.Sprintf("policy %s v%d %s", p.Policy.Name, p.Policy.Version, orEmpty(p.Policy.Params))
	} else {
		what = fmt.Sprintf("tariff %s %s per unit", p.Tariff.PricePerUnit, p.Tariff.Currency)
	}
	fmt.Fprintf(out, "reprice %s from %s to %s under %s (nothing written)\n", p.Service,
		from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), what)
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "application\trelays now\trelays proposed\tunits now\tunits proposed\tamount now\tamount proposed")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Application, r.Now.Relays, r.Proposed.Relays,
			r.Now.Units, r.Proposed.Units, amounts(r.NowAmounts), amounts(r.ProposedAmounts))
	}
	tw.Flush()
	if len(rows) == 0 {
		fmt.Fprintln(out, "(no usage of the service in the window)")
	}
}

func amounts(as []ledger.Amount) string {
	if len(as) == 0 {
		return "-"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.Value + " " + a.Currency
	}
	return strings.Join(s, ", ")
}

func orEmpty(b []byte) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}
