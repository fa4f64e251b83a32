package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
)

// span is the part of a partition's log a replay reads: [First, End).
type span struct {
	Partition  int32
	First, End int64
}

// spans returns every partition of topic with its earliest retained
// offset and its end (the offset the next record will get) now: a replay
// reads up to there, so records produced meanwhile are not part of it.
func spans(ctx context.Context, brokers []string, topic string) ([]span, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("audit: kafka metadata: %w", err)
	}
	var reqs []kafka.OffsetRequest
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("audit: kafka metadata of %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("audit: topic %s has no partitions", topic)
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("audit: list offsets: %w", err)
	}
	var out []span
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("audit: list offsets of partition %d: %w", po.Partition, po.Error)
		}
		out = append(out, span{Partition: int32(po.Partition), First: po.FirstOffset, End: po.LastOffset})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out, nil
}

// stallTimeout is how long a replay waits for the next records of a span
// it has not finished reading before it gives up.
const stallTimeout = 30 * time.Second

// read reads sp in batches of up to size records and passes each to fn;
// fn must not keep the slice. Reading runs ahead of fn by a batch. It
// fetches from the partition's leader directly (kafka-go's Conn): its
// Reader, one record at a time through channels, reads a tenth as fast.
func read(ctx context.Context, brokers []string, topic string, sp span, size int, fn func([]kafka.Message) error) error {
	if sp.First >= sp.End {
		return nil
	}
	conn, err := dialLeader(ctx, brokers, topic, sp.Partition)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	// Two buffers: one filled while fn handles the other.
	full, free := make(chan []kafka.Message, 1), make(chan []kafka.Message, 2)
	free <- make([]kafka.Message, 0, size)
	free <- make([]kafka.Message, 0, size)
	errc := make(chan error, 1)
	go func() {
		defer close(full)
		f := fetcher{conn: conn, sp: sp, next: sp.First}
		for f.next < sp.End {
			var buf []kafka.Message
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			buf, err := f.fill(buf[:0], size)
			if err != nil {
				if ctx.Err() == nil {
					errc <- err
				}
				return
			}
			select {
			case full <- buf:
			case <-ctx.Done():
				return
			}
		}
	}()
	for buf := range full {
		if err := fn(buf); err != nil {
			return err
		}
		free <- buf
	}
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

func dialLeader(ctx context.Context, brokers []string, topic string, partition int32) (*kafka.Conn, error) {
	var err error
	for _, b := range brokers {
		var conn *kafka.Conn
		if conn, err = kafka.DialLeader(ctx, "tcp", b, topic, int(partition)); err == nil {
			return conn, nil
		}
	}
	return nil, fmt.Errorf("audit: partition %d: connect to its leader: %w", partition, err)
}

// fetcher reads one span from its partition's leader.
type fetcher struct {
	conn  *kafka.Conn
	sp    span
	next  int64
	batch *kafka.Batch // the fetch being read, if any
}

// fill appends records from f.next on to buf, up to size of them or the
// span's end.
func (f *fetcher) fill(buf []kafka.Message, size int) ([]kafka.Message, error) {
	stalled := time.Now()
	for len(buf) < size && f.next < f.sp.End {
		if f.batch == nil {
			if _, err := f.conn.Seek(f.next, kafka.SeekAbsolute); err != nil {
				return nil, f.errorf(err)
			}
			f.conn.SetReadDeadline(time.Now().Add(stallTimeout))
			f.batch = f.conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second})
		}
		m, err := f.batch.ReadMessage()
		if err != nil {
			cerr := f.batch.Close()
			f.batch = nil
			if cerr != nil {
				return nil, f.errorf(cerr)
			}
			if time.Since(stalled) > stallTimeout {
				return nil, f.errorf(errors.New("no records"))
			}
			continue // the fetch is read: fetch the next
		}
		stalled = time.Now()
		if m.Offset < f.next {
			continue // a fetch starts at its record batch's first offset
		}
		if m.Offset >= f.sp.End {
			f.next = f.sp.End // the offsets before End were not records
			break
		}
		buf = append(buf, m)
		f.next = m.Offset + 1
	}
	if f.next >= f.sp.End && f.batch != nil {
		f.batch.Close()
		f.batch = nil
	}
	return buf, nil
}

func (f *fetcher) errorf(err error) error {
	return fmt.Errorf("audit: partition %d: read at offset %d of [%d, %d): %w", f.sp.Partition, f.next, f.sp.First, f.sp.End, err)
}
