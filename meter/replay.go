package meter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ledger"
)

// Lookups are the reads the meter's decisions make: the stored state of
// streams not in memory, and the services and policy versions that price
// them. A *ledger.Store is one; a replay brings its own.
type Lookups interface {
	Streams(ctx context.Context, ids []uuid.UUID) ([]ledger.Stream, error)
	OpenStreams(ctx context.Context, topic string, partition int32) ([]ledger.Stream, error)
	Services(ctx context.Context) ([]ledger.Service, time.Time, error)
	Policy(ctx context.Context, id int64) (ledger.Policy, error)
	PolicyID(ctx context.Context, p ledger.Policy) (int64, error)
}

var _ Lookups = (*ledger.Store)(nil)

// ReplayConfig configures a Replay.
type ReplayConfig struct {
	// Topic and GroupID name the batches' partitions and offsets, as a
	// Meter's (defaults DefaultTopic and DefaultGroupID).
	Topic   string
	GroupID string
	// Lookups answers the meter's reads (required): the streams the
	// replay's own batches stored, and the recorded services and policies.
	Lookups Lookups
	// StreamIdleTimeout is the metering meter's (default DefaultStreamIdle).
	StreamIdleTimeout time.Duration
	// Logger receives the replay's logs (nil: discarded).
	Logger *slog.Logger
}

// Replay meters records with a Meter's own decisions (sequencing, pricing,
// pairing, closing, findings) but hands each batch to its caller instead of
// committing it: what an audit recomputes and a what-if prices. The caller
// stores a batch wherever Lookups will find its streams again (a stream a
// batch closed leaves memory once its batch is handed over, as in a
// Meter). A Replay is not safe for concurrent use.
type Replay struct {
	m     *Meter
	parts map[int32]*replayPartition
}

// replayPartition is one partition's builder and where its offsets stand.
type replayPartition struct {
	w     *partitionWorker
	next  int64     // the next offset, NoOffset before the first batch
	swept time.Time // the partition clock at the last sweep
}

// NewReplay returns a Replay for cfg.
func NewReplay(cfg ReplayConfig) (*Replay, error) {
	if cfg.Lookups == nil {
		return nil, errors.New("meter: replay config: no lookups")
	}
	if cfg.StreamIdleTimeout < 0 {
		return nil, errors.New("meter: replay config: negative idle timeout")
	}
	c := Config{Topic: cfg.Topic, GroupID: cfg.GroupID, StreamIdleTimeout: cfg.StreamIdleTimeout,
		Brokers: []string{"replay"}, Store: ledger.New(nil)}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.Store = nil
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	met, err := newMetrics(nil)
	if err != nil {
		return nil, err
	}
	m := &Meter{cfg: c, log: log, reads: cfg.Lookups, metrics: met,
		services: newServices(cfg.Lookups, DefaultServicesRefresh, log)}
	return &Replay{m: m, parts: map[int32]*replayPartition{}}, nil
}

func (r *Replay) partition(p int32) *replayPartition {
	rp := r.parts[p]
	if rp == nil {
		rp = &replayPartition{w: &partitionWorker{m: r.m, partition: p, bl: newBuilder(r.m, p)}, next: ledger.NoOffset}
		r.parts[p] = rp
	}
	return rp
}

// Batch meters recs, consecutive records of one partition, into one batch
// and hands it to commit, which must not keep it: its slices are reused.
// Every sweepInterval of the partition's clock (the latest observation time
// metered), streams idle past the timeout are closed as abandoned in a
// batch of their own, as a Meter does. A record of a schema major this
// build does not know ends the batch before it and is returned as a
// *PartitionError.
func (r *Replay) Batch(ctx context.Context, partition int32, recs []kafka.Message, commit func(*ledger.Batch) error) error {
	rp := r.partition(partition)
	p, stop, err := rp.w.build(ctx, rp.next, recs, nil)
	if err != nil {
		return err
	}
	if err := rp.hand(p, commit); err != nil {
		return err
	}
	if stop != nil {
		return stop
	}
	if now := rp.w.bl.now; now.Sub(rp.swept) > sweepInterval {
		return r.Sweep(partition, now, commit)
	}
	return nil
}

// Sweep closes, as abandoned, the partition's streams idle past the
// timeout at now (a Meter's clock once its partition is caught up: the
// wall clock) and hands their batch to commit.
func (r *Replay) Sweep(partition int32, now time.Time, commit func(*ledger.Batch) error) error {
	rp := r.partition(partition)
	bl := rp.w.bl
	bl.now = maxTime(bl.now, now)
	rp.swept = bl.now
	if rp.next == ledger.NoOffset {
		return nil
	}
	bl.begin(rp.next)
	if !bl.sweep() {
		return nil
	}
	bl.finish()
	return rp.hand(bl.cur, commit)
}

// hand gives p to commit when it changes anything, and then treats it as
// committed.
func (rp *replayPartition) hand(p *pending, commit func(*ledger.Batch) error) error {
	if !worthCommitting(&p.b) {
		return nil
	}
	if err := commit(&p.b); err != nil {
		return fmt.Errorf("meter: replay partition %d: %w", rp.w.partition, err)
	}
	rp.next = p.b.To
	rp.w.bl.committed(p)
	return nil
}

// Release drops what the replay holds of partition, whose records are
// all metered: its open streams leave memory.
func (r *Replay) Release(partition int32) {
	if rp := r.parts[partition]; rp != nil {
		rp.w.bl.reset()
		delete(r.parts, partition)
	}
}

// InMemory returns the number of streams the replay holds in memory: the
// open ones, and those closed in the batch last handed over.
func (r *Replay) InMemory() int {
	n := 0
	for _, rp := range r.parts {
		n += len(rp.w.bl.streams)
	}
	return n
}
