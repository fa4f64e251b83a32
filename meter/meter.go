// Package meter decides what happened: it turns the events of
// relaymeter.messages.v1 into metered messages (each worth a number of
// relays, by its stream's policy), stream state, findings and quarantined
// records, exactly once, and hands them to the ledger, which decides how
// they are stored.
//
// A Meter joins a Kafka consumer group. For every partition assigned to it,
// it reads the partition's next offset from Postgres (consumer_offsets; a
// Kafka commit is never used) and the partition's open streams, and
// consumes from there in batches bounded by size and time. Each batch is
// one Postgres transaction that moves the stored offset with a
// compare-and-set and stores the batch. A crash at any point leaves either
// all of a batch or none of it, and a restart resumes from the stored
// offset with the stream state stored with it. While a batch commits, the
// partition already fetches and builds the next one on top of the first's
// in-memory state; batches still commit one at a time and in order, and
// when a commit fails the partition drops the batch it built meanwhile with
// all its state and resumes from the stored offset.
//
// Nothing a record holds can stop a partition but a schema major version
// this build does not know (Run then returns a *PartitionError wrapping
// event.ErrUnknownMajor, and the offset stays at that record):
//   - text is cleaned (valid UTF-8, no NUL, bounded), with a finding;
//   - a record that cannot be metered (empty, undecodable, no schema
//     major, fields out of range) is quarantined whole, with a finding;
//   - a batch Postgres refuses is retried in halves until the record at
//     fault is found and quarantined;
//   - a batch fenced by another consumer, an ambiguous commit and a stream
//     another meter wrote meanwhile resume from the stored state.
//
// Per stream, the meter drops true duplicates (a seq already metered), lets
// a late event fill its gap, and records gaps, broken hash chains, events
// for streams never opened, streams of unknown services and StreamClosed
// counts that differ from what was metered as findings, and meters on. A
// stream keeps the policy version (with its parameters) it opened with. A
// stream whose edge went away without a StreamClosed is closed as abandoned
// after StreamIdleTimeout. A close that says which messages crossed the
// edge leaves the others unbilled.
package meter

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymeter/relaymeter/ledger"
)

// Defaults of Config.
const (
	DefaultTopic           = "relaymeter.messages.v1"
	DefaultGroupID         = "relaymeter-meter"
	DefaultBatchSize       = 5000
	DefaultBatchWait       = 100 * time.Millisecond
	DefaultServicesRefresh = 10 * time.Second
	DefaultRetryBackoff    = time.Second
	DefaultStreamIdle      = time.Hour
	DefaultSessionTimeout  = 10 * time.Second
)

// Config configures a Meter.
type Config struct {
	// Brokers are the Kafka bootstrap addresses (required).
	Brokers []string
	// Topic is the events topic (default DefaultTopic).
	Topic string
	// GroupID is the consumer group, also the key of the offsets stored in
	// Postgres (default DefaultGroupID).
	GroupID string
	// SessionTimeout is how long the group waits for a meter that stopped
	// answering (killed, partitioned) before its partitions go to the
	// others (default DefaultSessionTimeout); heartbeats go every third of
	// it.
	SessionTimeout time.Duration
	// Store is the ledger the meter writes (required).
	Store *ledger.Store
	// BatchSize bounds the records of one batch (default DefaultBatchSize).
	BatchSize int
	// BatchWait bounds how long a batch waits for more records after its
	// first (default DefaultBatchWait).
	BatchWait time.Duration
	// ServicesRefresh is how old the cached services table may grow before
	// a stream of a service not in it reloads it (default
	// DefaultServicesRefresh).
	ServicesRefresh time.Duration
	// RetryBackoff is the pause before a partition retries after a failed
	// batch, e.g. Postgres unreachable (default DefaultRetryBackoff).
	RetryBackoff time.Duration
	// StreamIdleTimeout is how long an open stream may go without an event
	// before the meter closes it as abandoned (its edge was killed and will
	// never record its StreamClosed), by the partition's clock: the latest
	// observation time metered, or the wall clock once the partition has
	// caught up (default DefaultStreamIdle). An event that arrives later
	// opens the stream again, with a finding.
	StreamIdleTimeout time.Duration
	// Chain, when set, is the chain the meter cuts session windows from,
	// and the meter settles them: any meter may, the ledger serializes
	// them. Nil: no settlement.
	Chain Chain
	// Settlement is the chain's configuration as stored with the ledger
	// (its source, genesis, block time, blocks per session and grace
	// blocks; defaults DefaultBlockTime, DefaultSessionBlocks and
	// DefaultGraceBlocks). A window settles once the chain is GraceBlocks
	// past its end and every partition's clock is GraceBlocks × BlockTime
	// past it. Run refuses to start when the ledger was settled under
	// another configuration (ledger.ErrSettlementConfig).
	Settlement ledger.SettlementConfig
	// SettleInterval is how often the settler looks for windows to settle
	// (default the block time, at most a second).
	SettleInterval time.Duration
	// Logger receives the meter's logs (nil: discarded).
	Logger *slog.Logger
	// Registerer registers the meter's Prometheus metrics (nil: not
	// registered).
	Registerer prometheus.Registerer
}

// Validate checks c and fills in its defaults.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("meter: config: no brokers")
	}
	if c.Store == nil {
		return errors.New("meter: config: no store")
	}
	if c.BatchSize < 0 || c.BatchWait < 0 || c.ServicesRefresh < 0 || c.RetryBackoff < 0 || c.StreamIdleTimeout < 0 || c.SessionTimeout < 0 {
		return errors.New("meter: config: negative batch size, wait, refresh, backoff or idle timeout")
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.GroupID == "" {
		c.GroupID = DefaultGroupID
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchWait == 0 {
		c.BatchWait = DefaultBatchWait
	}
	if c.ServicesRefresh == 0 {
		c.ServicesRefresh = DefaultServicesRefresh
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = DefaultStreamIdle
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	return c.validateSettlement()
}

// validateSettlement checks the settlement's configuration and fills in its
// defaults.
func (c *Config) validateSettlement() error {
	st := &c.Settlement
	if st.BlockTime < 0 || st.SessionBlocks < 0 || st.GraceBlocks < 0 || c.SettleInterval < 0 {
		return errors.New("meter: config: negative block time, blocks per session, grace blocks or settle interval")
	}
	if st.BlockTime == 0 {
		st.BlockTime = DefaultBlockTime
	}
	if st.SessionBlocks == 0 {
		st.SessionBlocks = DefaultSessionBlocks
	}
	if c.SettleInterval == 0 {
		c.SettleInterval = min(st.BlockTime, time.Second)
	}
	if c.Chain != nil && st.Source == "" {
		return errors.New("meter: config: a chain without its settlement source (clock or cometbft)")
	}
	return nil
}

// PartitionError reports a partition that stopped and why; Run returns it.
type PartitionError struct {
	Topic     string
	Partition int
	// Offset is the offset of the record the partition stopped at; the
	// stored next offset is this one.
	Offset int64
	Err    error
}

func (e *PartitionError) Error() string {
	return fmt.Sprintf("meter: partition %s/%d stopped at offset %d: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

func (e *PartitionError) Unwrap() error { return e.Err }

// Meter consumes the events topic into the ledger.
type Meter struct {
	cfg      Config
	log      *slog.Logger
	store    *ledger.Store
	metrics  *metrics
	services *services

	// afterCommit, when set by tests, runs after each committed batch.
	afterCommit func(partition int, b *ledger.Batch)
}

// New returns a Meter for cfg.
func New(cfg Config) (*Meter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Meter{
		cfg:      cfg,
		log:      log,
		store:    cfg.Store,
		metrics:  met,
		services: newServices(cfg.Store, cfg.ServicesRefresh, log),
	}, nil
}
