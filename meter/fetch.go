package meter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
)

// fetcher reads one partition from an offset with kafka-go's Client.Fetch,
// one request ahead of the meter, and hands its records out a batch at a
// time. (kafka-go's Reader costs, per record, a read deadline, a channel
// hand-off and a select: a third of the meter's own CPU.)
type fetcher struct {
	chunks  chan chunk
	pending []kafka.Message // of a chunk, not yet handed out
	cancel  context.CancelFunc
	done    chan struct{}
}

// chunk is what one fetch returned: records (none when the partition had
// nothing new within the fetch's wait), or why it failed.
type chunk struct {
	recs []kafka.Message
	err  error
}

// fetchMaxBytes bounds a fetch response; with one response queued and one
// being read, a partition holds at most twice this.
const fetchMaxBytes = 16 << 20

func startFetcher(ctx context.Context, m *Meter, partition int32, offset int64) *fetcher {
	ctx, cancel := context.WithCancel(ctx)
	f := &fetcher{chunks: make(chan chunk, 1), cancel: cancel, done: make(chan struct{})}
	client := &kafka.Client{Addr: kafka.TCP(m.cfg.Brokers...)}
	go f.run(ctx, client, m.cfg.Topic, int(partition), offset)
	return f
}

// stop ends the fetcher and waits for it.
func (f *fetcher) stop() {
	f.cancel()
	<-f.done
}

func (f *fetcher) run(ctx context.Context, client *kafka.Client, topic string, partition int, offset int64) {
	defer close(f.done)
	for {
		recs, next, err := fetchOnce(ctx, client, topic, partition, offset)
		if ctx.Err() != nil {
			return
		}
		select {
		case f.chunks <- chunk{recs: recs, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
		offset = next
	}
}

// fetchOnce fetches the records of a partition from offset, waiting up to
// idleWait for a first one, and returns them and the offset after them.
func fetchOnce(ctx context.Context, client *kafka.Client, topic string, partition int, offset int64) ([]kafka.Message, int64, error) {
	res, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: partition, Offset: offset,
		MinBytes: 1, MaxBytes: fetchMaxBytes, MaxWait: idleWait})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		return nil, offset, fmt.Errorf("fetch from offset %d: %w", offset, err)
	}
	if c, ok := res.Records.(io.Closer); ok {
		defer c.Close()
	}
	var recs []kafka.Message
	var a arena
	for {
		r, err := res.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return recs, offset, nil
		}
		if err != nil {
			return nil, offset, fmt.Errorf("fetch from offset %d: read: %w", offset, err)
		}
		if r.Offset < offset {
			continue // a record batch may start before the offset asked for
		}
		m := kafka.Message{Topic: topic, Partition: partition, Offset: r.Offset, Time: r.Time}
		if m.Key, err = a.read(r.Key); err == nil {
			m.Value, err = a.read(r.Value)
		}
		if err != nil {
			return nil, offset, fmt.Errorf("fetch: record at offset %d: %w", r.Offset, err)
		}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
		recs = append(recs, m)
		offset = r.Offset + 1
	}
}

// arena copies the keys and values of a fetch's records into a few large
// blocks instead of two allocations per record: records outlive the
// response, and the blocks live as long as any record of theirs.
type arena struct{ block []byte }

// arenaBlock is the size of an arena's blocks; a larger value gets a block
// of its own.
const arenaBlock = 1 << 20

func (a *arena) read(b kafka.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	n := b.Len()
	if n > cap(a.block)-len(a.block) {
		a.block = make([]byte, 0, max(n, arenaBlock))
	}
	out := a.block[len(a.block) : len(a.block)+n : len(a.block)+n]
	a.block = a.block[:len(a.block)+n]
	_, err := io.ReadFull(b, out)
	return out, err
}

// next returns the next batch: the records of at least one fetch, then as
// many as arrive within wait of the first, up to limit; none when the
// partition had nothing new within idleWait.
func (f *fetcher) next(ctx context.Context, limit int, wait time.Duration) ([]kafka.Message, error) {
	var recs []kafka.Message
	// take hands out records of c and of what is pending, without copying
	// them when a batch comes from one chunk.
	take := func(c chunk) error {
		if c.err != nil {
			return c.err
		}
		if len(f.pending) == 0 {
			f.pending = c.recs
		} else {
			f.pending = append(f.pending, c.recs...)
		}
		n := min(limit-len(recs), len(f.pending))
		if len(recs) == 0 {
			recs = f.pending[:n:n]
		} else {
			recs = append(recs, f.pending[:n]...)
		}
		f.pending = f.pending[n:]
		return nil
	}
	if len(f.pending) == 0 {
		select {
		case c := <-f.chunks:
			if err := take(c); err != nil || len(recs) == 0 {
				return recs, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	} else if err := take(chunk{}); err != nil {
		return nil, err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(recs) < limit {
		select {
		case c := <-f.chunks:
			if err := take(c); err != nil {
				// Keep what was taken; the error comes back next time.
				f.pushBack(c.err)
				return recs, nil
			}
			if len(c.recs) == 0 {
				return recs, nil // caught up
			}
		case <-timer.C:
			return recs, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return recs, nil
}

// pushBack returns an error to the front of the queue; the fetcher has
// stopped after it, so there is room.
func (f *fetcher) pushBack(err error) {
	select {
	case f.chunks <- chunk{err: err}:
	default:
	}
}
