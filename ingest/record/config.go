package record

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultTopic is the topic events are produced to unless Config.Topic says
// otherwise.
const DefaultTopic = "relaymeter.messages.v1"

// Config configures a Recorder. Every field but Brokers and EdgeID has a
// default, given in its comment.
type Config struct {
	// Brokers are the Kafka bootstrap addresses; required.
	Brokers []string
	// Topic is the topic to produce to (default DefaultTopic).
	Topic string
	// EdgeID names this edge instance in every event; required.
	EdgeID string

	// BufferEvents bounds the events recorded and not yet durable (default
	// 16384); Append blocks beyond it.
	BufferEvents int
	// BufferBytes bounds the bytes of events recorded and not yet durable
	// (default 64 MiB); Append blocks beyond it. An event larger than the
	// whole budget is admitted when nothing else is buffered.
	BufferBytes int64
	// BatchSize is the most events per produce request, and so per partition
	// record batch (default 1000).
	BatchSize int
	// BatchBytes is the most bytes per produce request (default 1 MiB, and
	// at most the topic's max.message.bytes).
	BatchBytes int64
	// BatchLinger is how long an idle partition waits for more events before
	// it sends the first one (default 0: it sends at once, and events that
	// arrive while a produce is in flight form the next batch).
	BatchLinger time.Duration
	// MaxEventBytes is the largest encoded event accepted (default
	// BatchBytes minus 1 KiB, and at most what the topic's max.message.bytes
	// admits, learnt at New); larger ones fail with ErrEventTooLarge.
	MaxEventBytes int

	// RetryBackoffMin and RetryBackoffMax bound the exponential backoff
	// between attempts of a failed produce (defaults 50ms and 2s).
	RetryBackoffMin, RetryBackoffMax time.Duration
	// WriteTimeout bounds one produce round trip when no spool takes over
	// (default 10s); a produce that times out is retried, and may then be
	// recorded twice (the meter drops the duplicate).
	WriteTimeout time.Duration
	// MetadataRefresh is how often the topic's partitions and leaders are
	// refreshed (default 10s); a produce error refreshes them sooner.
	MetadataRefresh time.Duration
	// StartTimeout bounds New's wait for the topic's metadata and
	// max.message.bytes (default 10s); past it New logs a warning and goes
	// on with one partition and the broker default.
	StartTimeout time.Duration

	// SpoolDir, when set, is a local directory where events go when Kafka
	// cannot take them: appended and fsynced, they count as durable, and
	// are sent to Kafka in order once it is back. One recorder per
	// directory at a time. Without it, failed produces are retried with
	// backoff while Append applies back-pressure.
	SpoolDir string
	// SpoolAfter is how long a produce may stay unacknowledged before its
	// events go to the spool instead (default 500ms).
	SpoolAfter time.Duration
	// SpoolMaxBytes caps the spool's size on disk (default 1 GiB); beyond
	// it Append blocks until draining frees room.
	SpoolMaxBytes int64
	// SpoolSegmentBytes is the size at which a spool segment file is closed
	// and the next one begun (default 64 MiB, at most SpoolMaxBytes/4); a
	// segment is deleted once Kafka has taken all of it.
	SpoolSegmentBytes int64

	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the recorder's metrics; nil registers none.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.BufferEvents == 0 {
		c.BufferEvents = 16384
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = 64 << 20
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = 1 << 20
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = int(c.BatchBytes) - 1024
	}
	if c.RetryBackoffMin == 0 {
		c.RetryBackoffMin = 50 * time.Millisecond
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = 2 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MetadataRefresh == 0 {
		c.MetadataRefresh = 10 * time.Second
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.SpoolAfter == 0 {
		c.SpoolAfter = 500 * time.Millisecond
	}
	if c.SpoolMaxBytes == 0 {
		c.SpoolMaxBytes = 1 << 30
	}
	if c.SpoolSegmentBytes == 0 {
		c.SpoolSegmentBytes = 64 << 20
	}
	if c.SpoolSegmentBytes > c.SpoolMaxBytes/4 {
		c.SpoolSegmentBytes = max(c.SpoolMaxBytes/4, 1)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports whether c, with its defaults applied, is usable.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case len(c.Brokers) == 0:
		return errors.New("record: config: no brokers")
	case c.EdgeID == "":
		return errors.New("record: config: no edge id")
	case c.BufferEvents < 0 || c.BatchSize < 0 || c.BufferBytes < 0 || c.BatchBytes < 0 || c.MaxEventBytes < 0 ||
		c.SpoolMaxBytes < 0 || c.SpoolSegmentBytes < 0:
		return errors.New("record: config: negative size")
	case c.BatchLinger < 0 || c.RetryBackoffMin < 0 || c.RetryBackoffMax < c.RetryBackoffMin ||
		c.WriteTimeout < 0 || c.MetadataRefresh < 0 || c.StartTimeout < 0 || c.SpoolAfter < 0:
		return errors.New("record: config: bad durations")
	case int64(c.MaxEventBytes)+eventOverhead > c.BatchBytes:
		return fmt.Errorf("record: config: max event bytes %d does not fit batch bytes %d", c.MaxEventBytes, c.BatchBytes)
	}
	return nil
}
