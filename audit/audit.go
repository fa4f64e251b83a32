// Package audit recomputes, from the immutable events log alone, what the
// meter derived into Postgres, and compares the two row by row.
//
// A run reads relaymeter.messages.v1 from the earliest retained offset of
// every partition up to its end when the run started, and meters it again
// with the meter's own decisions (meter.Replay) under the policy versions
// recorded in Postgres. It commits the replay's batches with the ledger's
// own code into temporary copies of the derived tables, private to the
// run's Postgres session, and then walks each derived table (streams,
// messages, usage_minutes) in primary key order against the ledger's:
// a row only the replay has is missing, one only the ledger has is extra,
// one both have with other values differs. Each is an audit_findings row
// of the run's audit_runs row.
//
// What grows with the data: the temporary tables (in Postgres, on disk past
// temp_buffers, a copy of the derived tables) and the run's findings
// (recorded up to Config.MaxFindings per table, all counted). What does
// not: the run's memory, which holds the open streams of the partition
// being replayed and one batch of records, and the comparison, which
// streams rows from Postgres.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ledger"
	"github.com/relaymeter/relaymeter/meter"
)

// Filter selects the rows compared; the whole log is replayed regardless,
// since a row's state depends on every event before it. A zero time or an
// empty name does not filter. Streams are selected by their opening time,
// messages by their observation time, usage by its minute.
type Filter struct {
	From, To    time.Time
	Application string
	Service     string
}

// Defaults of Config.
const (
	DefaultBatchSize   = 5000
	DefaultMaxFindings = 10000
)

// Config configures a Run.
type Config struct {
	// Brokers are the Kafka bootstrap addresses (required).
	Brokers []string
	// Topic is the events topic (default meter.DefaultTopic).
	Topic string
	// GroupID is the meter's consumer group, whose stored offsets say how
	// far the ledger is (default meter.DefaultGroupID).
	GroupID string
	// Pool is the ledger's database (required; migrated).
	Pool *pgxpool.Pool
	// StreamIdleTimeout must be the meter's (default meter.DefaultStreamIdle).
	StreamIdleTimeout time.Duration
	Filter            Filter
	// BatchSize bounds the records of one replayed batch (default
	// DefaultBatchSize).
	BatchSize int
	// MaxFindings bounds the audit_findings rows recorded per table
	// (default DefaultMaxFindings); every difference is counted.
	MaxFindings int
	// Progress, when set, is told of the replay's progress before its
	// first batch and after each.
	Progress func(Progress)
	// Now is the wall clock, which a caught-up meter's partitions run on
	// (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Validate checks c and fills in its defaults.
func (c *Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("audit: config: no brokers")
	case c.Pool == nil:
		return errors.New("audit: config: no database")
	case c.BatchSize < 0 || c.MaxFindings < 0 || c.StreamIdleTimeout < 0:
		return errors.New("audit: config: negative batch size, findings bound or idle timeout")
	case !c.Filter.From.IsZero() && !c.Filter.To.IsZero() && !c.Filter.From.Before(c.Filter.To):
		return errors.New("audit: config: --from must be before --to")
	}
	if c.Topic == "" {
		c.Topic = meter.DefaultTopic
	}
	if c.GroupID == "" {
		c.GroupID = meter.DefaultGroupID
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = meter.DefaultStreamIdle
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxFindings == 0 {
		c.MaxFindings = DefaultMaxFindings
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Progress is how far a replay is: events replayed of the total, and the
// time since it began.
type Progress struct {
	Events, Total int64
	Elapsed       time.Duration
}

// TableSummary is what the comparison of one table found.
type TableSummary struct {
	Table                   string
	Compared                int64 // the replay's rows in the filter
	Missing, Extra, Differs int64
}

// Summary is what a run found.
type Summary struct {
	RunID  int64
	Events int64 // records replayed
	// Windows is how many session windows the replay settled: those the
	// ledger settled.
	Windows int
	// Replayed is how long replaying took, Elapsed the whole run.
	Replayed, Elapsed time.Duration
	Tables            []TableSummary
	// Samples are the first differences found, up to a few per table.
	Samples []Finding
	// Lagging are the partitions whose stored offset (how far the meter
	// metered into the ledger) is not the end the replay read to: the
	// rows of the records in between differ for that reason.
	Lagging []Lag
}

// Lag is a partition the meter metered to Stored (NoOffset: not at all)
// while the replay read it to End.
type Lag struct {
	Partition   int32
	Stored, End int64
}

// Differences is the number of rows that do not match.
func (s *Summary) Differences() int64 {
	var n int64
	for _, t := range s.Tables {
		n += t.Missing + t.Extra + t.Differs
	}
	return n
}

// Finding is an audit_findings row.
type Finding struct {
	ID         int64
	RunID      int64
	Kind       string // missing, extra or differs
	Table      string
	Keys       json.RawMessage
	Expected   json.RawMessage // the replay's row; nil when extra
	Found      json.RawMessage // the ledger's row; nil when missing
	RecordedAt time.Time
}

// samplesPerTable is how many differences of each table a Summary keeps.
const samplesPerTable = 3

// Run audits the ledger against the log and records the run. It returns
// the summary, and an error when the audit could not run (the run's row
// then says failed and why); a run that found differences is no error.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	sum := &Summary{}
	id, err := startRun(ctx, cfg.Pool, cfg.Topic, cfg.Filter)
	if err != nil {
		return nil, err
	}
	sum.RunID = id
	offsets, err := run(ctx, cfg, sum)
	sum.Elapsed = time.Since(began)
	if ferr := finishRun(context.WithoutCancel(ctx), cfg.Pool, sum, offsets, err); ferr != nil && err == nil {
		err = ferr
	}
	return sum, err
}

func run(ctx context.Context, cfg Config, sum *Summary) ([]span, error) {
	sps, err := spans(ctx, cfg.Brokers, cfg.Topic)
	if err != nil {
		return nil, err
	}
	if sum.Lagging, err = lagging(ctx, cfg, sps); err != nil {
		return sps, err
	}
	sc, err := newScratch(ctx, cfg.Pool, settlementTables...)
	if err != nil {
		return sps, err
	}
	defer sc.close()
	commit := func(b *ledger.Batch) error { return sc.store.Commit(ctx, b) }
	if err := replay(ctx, cfg, sps, sc.store, commit, sum); err != nil {
		return sps, err
	}
	if sum.Windows, err = sc.settle(ctx, cfg.GroupID, cfg.Topic, len(sps)); err != nil {
		return sps, err
	}
	for _, t := range slices.Concat(tables, settlementTableSpecs) {
		ts, err := compareTable(ctx, cfg, sc, t, sum)
		if err != nil {
			return sps, err
		}
		sum.Tables = append(sum.Tables, ts)
	}
	ts, err := verifyChain(ctx, cfg, sum)
	if err != nil {
		return sps, err
	}
	sum.Tables = append(sum.Tables, ts)
	return sps, nil
}

// verifyChain checks the ledger's transactions as ledger verify does (each
// sums to zero per currency, seqs without gaps, the hash chain intact),
// each problem a finding of table ledger_chain.
func verifyChain(ctx context.Context, cfg Config, sum *Summary) (TableSummary, error) {
	r, err := ledger.New(cfg.Pool).VerifyLedger(ctx)
	if err != nil {
		return TableSummary{}, fmt.Errorf("audit: verify the ledger: %w", err)
	}
	ts := TableSummary{Table: "ledger_chain", Compared: int64(r.Transactions)}
	rec := newRecorder(cfg.Pool, sum.RunID, cfg.MaxFindings)
	for _, p := range r.Problems {
		ts.Differs++
		keys, _ := json.Marshal(map[string]int64{"seq": p.Seq})
		found, _ := json.Marshal(map[string]string{"problem": p.Detail})
		d := difference{kind: "differs", table: ts.Table, keys: keys, found: found}
		if ts.Differs <= samplesPerTable {
			sum.Samples = append(sum.Samples, Finding{RunID: sum.RunID, Kind: d.kind, Table: d.table, Keys: keys, Found: found})
		}
		if err := rec.add(ctx, d); err != nil {
			return ts, err
		}
	}
	return ts, rec.flush(ctx)
}

// lagging returns the partitions whose stored offset in the ledger is not
// the end of their span.
func lagging(ctx context.Context, cfg Config, sps []span) ([]Lag, error) {
	store := ledger.New(cfg.Pool)
	var out []Lag
	for _, sp := range sps {
		at, err := store.NextOffset(ctx, cfg.GroupID, cfg.Topic, sp.Partition)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		if at != sp.End && !(at == ledger.NoOffset && sp.First == sp.End) {
			out = append(out, Lag{Partition: sp.Partition, Stored: at, End: sp.End})
		}
	}
	return out, nil
}

// replay meters every span through a meter.Replay whose reads go to
// lookups, handing its batches to commit, and then closes the streams a
// caught-up meter would have closed as abandoned by now.
func replay(ctx context.Context, cfg Config, sps []span, lookups meter.Lookups, commit func(*ledger.Batch) error, sum *Summary) error {
	r, err := meter.NewReplay(meter.ReplayConfig{Topic: cfg.Topic, GroupID: cfg.GroupID, Lookups: lookups,
		StreamIdleTimeout: cfg.StreamIdleTimeout, Logger: cfg.Logger})
	if err != nil {
		return err
	}
	var total int64
	for _, sp := range sps {
		total += sp.End - sp.First
	}
	began := time.Now()
	if cfg.Progress != nil {
		cfg.Progress(Progress{Total: total})
	}
	for _, sp := range sps {
		err := read(ctx, cfg.Brokers, cfg.Topic, sp, cfg.BatchSize, func(recs []kafka.Message) error {
			if err := r.Batch(ctx, sp.Partition, recs, commit); err != nil {
				return err
			}
			sum.Events += int64(len(recs))
			if cfg.Progress != nil {
				cfg.Progress(Progress{Events: sum.Events, Total: total, Elapsed: time.Since(began)})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := r.Sweep(sp.Partition, cfg.Now(), commit); err != nil {
			return err
		}
		r.Release(sp.Partition)
	}
	sum.Replayed = time.Since(began)
	return nil
}

// compareTable compares t and records its differences.
func compareTable(ctx context.Context, cfg Config, sc *scratch, t table, sum *Summary) (TableSummary, error) {
	ts := TableSummary{Table: t.name}
	rec := newRecorder(cfg.Pool, sum.RunID, cfg.MaxFindings)
	samples := 0
	n, err := sc.compare(ctx, t, cfg.Filter, func(d difference) error {
		switch d.kind {
		case "missing":
			ts.Missing++
		case "extra":
			ts.Extra++
		default:
			ts.Differs++
		}
		if samples < samplesPerTable {
			samples++
			sum.Samples = append(sum.Samples, Finding{RunID: sum.RunID, Kind: d.kind, Table: d.table,
				Keys: d.keys, Expected: d.expected, Found: d.found})
		}
		return rec.add(ctx, d)
	})
	if err != nil {
		return ts, err
	}
	ts.Compared = n
	return ts, rec.flush(ctx)
}

func (sp span) String() string { return fmt.Sprintf("%d:[%d,%d)", sp.Partition, sp.First, sp.End) }
