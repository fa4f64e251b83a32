package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/schollz/progressbar/v3"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/term"

	"github.com/relaymeter/relaymeter/audit"
	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
)

func init() {
	register(command{name: "audit", summary: "recompute the ledger from the events log and compare it row by row (exit 0 match, 1 differs, 2 could not run)", run: runAudit})
}

// windowFlags are the filters audit and reprice share.
type windowFlags struct {
	from, to, application, service string
}

func (w *windowFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.from, "from", "", "compare from this time on (RFC 3339; default: the beginning)")
	fs.StringVar(&w.to, "to", "", "compare up to this time, excluded (RFC 3339; default: no end)")
	fs.StringVar(&w.application, "application", "", "compare this application only")
	fs.StringVar(&w.service, "service", "", "compare this service only")
}

func (w *windowFlags) filter() (audit.Filter, error) {
	f := audit.Filter{Application: w.application, Service: w.service}
	for _, v := range []struct {
		name, s string
		t       *time.Time
	}{{"from", w.from, &f.From}, {"to", w.to, &f.To}} {
		if v.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v.s)
		if err != nil {
			return f, fmt.Errorf("--%s: %w", v.name, err)
		}
		*v.t = t
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, errors.New("--from must be before --to")
	}
	return f, nil
}

// infraFlags say where the events log and the ledger are: given, or a dev
// data directory's, started for the command while dev is not running.
type infraFlags struct {
	kafka, databaseURL, dataDir string
}

func (i *infraFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&i.kafka, "kafka", "", "Kafka brokers, comma-separated (default: the embedded Kafka of --data-dir)")
	fs.StringVar(&i.databaseURL, "database-url", "", "Postgres URL (default: the private server of --data-dir)")
	fs.StringVar(&i.dataDir, "data-dir", "", "a dev data directory whose Kafka and Postgres to read, with dev stopped")
}

// open returns the brokers and a pool on the ledger, and what stops the
// servers it started.
func (i *infraFlags) open(ctx context.Context, log *slog.Logger) (brokers []string, pool *pgxpool.Pool, stop func(), err error) {
	var stops []func()
	stop = func() {
		for j := len(stops) - 1; j >= 0; j-- {
			stops[j]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if (i.kafka == "" || i.databaseURL == "") && i.dataDir == "" {
		return nil, nil, stop, errors.New("give --kafka and --database-url, or the --data-dir of a stopped dev")
	}
	if i.databaseURL == "" {
		pg, err := startDevPostgres(ctx, i.dataDir, log)
		if err != nil {
			return nil, nil, stop, fmt.Errorf("%w (is dev running on %s? stop it, or give the --kafka and --database-url it prints)", err, i.dataDir)
		}
		stops = append(stops, func() { pg.Stop() })
		i.databaseURL = pg.URL("relaymeter")
	}
	if brokers = splitList(i.kafka); len(brokers) == 0 {
		kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(filepath.Join(i.dataDir, "kafka")),
			kfake.SeedTopics(4, topicMessages, topicClaims), kfake.DefaultNumPartitions(4))
		if err != nil {
			return nil, nil, stop, fmt.Errorf("embedded kafka of %s: %w", i.dataDir, err)
		}
		stops = append(stops, kc.Close)
		brokers = kc.ListenAddrs()
	}
	if pool, err = pgxpool.New(ctx, i.databaseURL); err != nil {
		return nil, nil, stop, fmt.Errorf("database: %w", err)
	}
	stops = append(stops, pool.Close)
	if err := pool.Ping(ctx); err != nil {
		return nil, nil, stop, fmt.Errorf("database: %w", err)
	}
	return brokers, pool, stop, nil
}

func runAudit(ctx context.Context, args []string, sio stdio) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(sio.err)
	var w windowFlags
	var inf infraFlags
	w.register(fs)
	inf.register(fs)
	idle := fs.Duration("stream-idle-timeout", meter.DefaultStreamIdle, "the meter's --stream-idle-timeout")
	group := fs.String("group", meter.DefaultGroupID, "the meter's Kafka consumer group (--group)")
	batch := fs.Int("batch", audit.DefaultBatchSize, "records per replayed batch")
	maxFindings := fs.Int("max-findings", audit.DefaultMaxFindings, "audit_findings rows recorded per table at most (all are counted)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	fs.String("config", "", "YAML configuration file")
	fs.Usage = func() {
		fmt.Fprintln(sio.err, "usage: relaymeter audit [--from T] [--to T] [--application A] [--service S] [flags]")
		fmt.Fprintln(sio.err, "exit status: 0 all rows match, 1 some differ, 2 the audit could not run")
		fs.PrintDefaults()
	}
	if _, err := parseConfig(fs, args); err != nil {
		return err
	}
	f, err := w.filter()
	if err != nil {
		return &exitError{2, err}
	}
	log, err := newLogger(sio.err, *logLevel)
	if err != nil {
		return &exitError{2, err}
	}
	brokers, pool, stop, err := inf.open(ctx, log)
	if err != nil {
		return &exitError{2, err}
	}
	defer stop()
	prog := newProgress(sio.err, "replaying")
	sum, err := audit.Run(ctx, audit.Config{Brokers: brokers, Topic: topicMessages, GroupID: *group, Pool: pool, StreamIdleTimeout: *idle,
		Filter: f, BatchSize: *batch, MaxFindings: *maxFindings, Progress: prog.update, Logger: log})
	prog.done()
	if err != nil {
		if sum != nil && sum.RunID != 0 {
			err = fmt.Errorf("run %d: %w", sum.RunID, err)
		}
		return &exitError{2, err}
	}
	printSummary(sio.out, sum)
	if sum.Differences() > 0 {
		return &exitError{1, errAuditDiffers}
	}
	return nil
}

// errAuditDiffers reports an audit that found rows that do not match.
var errAuditDiffers = errors.New("the ledger differs from what the events log recomputes")

// printSummary writes what an audit found, a line per table and the first
// differences.
func printSummary(out io.Writer, s *audit.Summary) {
	rate := 0.0
	if s.Replayed > 0 {
		rate = float64(s.Events) / s.Replayed.Seconds()
	}
	fmt.Fprintf(out, "audit run %d: %d events replayed in %s (%.0f events/s), %s in all\n",
		s.RunID, s.Events, s.Replayed.Round(time.Millisecond), rate, s.Elapsed.Round(time.Millisecond))
	for _, t := range s.Tables {
		fmt.Fprintf(out, "  %-19s %9d rows  %d missing  %d extra  %d differ\n", t.Table, t.Compared, t.Missing, t.Extra, t.Differs)
	}
	for _, l := range s.Lagging {
		stored := strconv.FormatInt(l.Stored, 10)
		if l.Stored == ledger.NoOffset {
			stored = "nothing"
		}
		fmt.Fprintf(out, "  note: partition %d: the meter metered to offset %s, the log ends at %d: the rows of the records between differ for that reason (let the meter catch up and audit again)\n",
			l.Partition, stored, l.End)
	}
	if n := s.Differences(); n > 0 {
		fmt.Fprintf(out, "result: DIFFERS, %d rows (audit_findings of run %d; GraphQL auditFindings)\n", n, s.RunID)
		for _, f := range s.Samples {
			fmt.Fprintf(out, "  %s %s %s\n    expected %s\n    found    %s\n", f.Kind, f.Table, f.Keys, orNone(f.Expected), orNone(f.Found))
		}
		return
	}
	fmt.Fprintln(out, "result: match")
}

func orNone(b []byte) string {
	if b == nil {
		return "(none)"
	}
	return string(b)
}

// progress shows a replay's progress: a bar with events/s and the time
// left on a terminal, otherwise a plain line every progressEvery.
type progress struct {
	w     io.Writer
	what  string
	tty   bool
	bar   *progressbar.ProgressBar
	last  time.Time
	final audit.Progress
}

const progressEvery = 5 * time.Second

func newProgress(w io.Writer, what string) *progress {
	p := &progress{w: w, what: what, last: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

func (p *progress) update(pr audit.Progress) {
	p.final = pr
	if p.tty {
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(pr.Total, progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(p.what), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("events"), progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		}
		p.bar.Set64(pr.Events)
		return
	}
	if time.Since(p.last) < progressEvery {
		return
	}
	p.last = time.Now()
	fmt.Fprintln(p.w, progressLine(p.what, pr))
}

// progressLine is the plain progress line of pr.
func progressLine(what string, pr audit.Progress) string {
	rate := float64(pr.Events) / max(pr.Elapsed.Seconds(), 1e-9)
	eta := "?"
	if rate > 0 && pr.Total >= pr.Events {
		eta = time.Duration(float64(pr.Total-pr.Events) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if pr.Total > 0 {
		pct = float64(pr.Events) * 100 / float64(pr.Total)
	}
	return fmt.Sprintf("%s: %d of %d events (%.1f%%), %.0f events/s, ETA %s", what, pr.Events, pr.Total, pct, rate, eta)
}

func (p *progress) done() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
