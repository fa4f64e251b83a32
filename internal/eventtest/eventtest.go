// Package eventtest reads recorded events back from Kafka for tests, and
// checks the contract on the way: one partition per stream, the stream id
// as the key, gapless seq from 1 and a verifying hash chain.
package eventtest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
)

// ReadTopic reads every record of every partition of topic, up to each
// partition's high watermark at the time of the call.
func ReadTopic(t testing.TB, brokers []string, topic string, partitions int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []kafka.Message
	for p := 0; p < partitions; p++ {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p)
		if err != nil {
			t.Fatalf("dial partition %d: %v", p, err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatalf("last offset of %d: %v", p, err)
		}
		if last == 0 {
			continue
		}
		// kafka-go's fetch deadline is MaxWait: one shorter than a loaded
		// broker takes to answer fails the same fetch on every retry.
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 2 * time.Second})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("read partition %d: %v", p, err)
			}
			out = append(out, m)
			if m.Offset == last-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// StreamEvents decodes msgs and groups them by stream in partition order,
// checking along the way that every stream lives in one partition, its
// record key is its id, its seq is gapless from 1 and its chain verifies.
func StreamEvents(t testing.TB, msgs []kafka.Message) map[uuid.UUID][]*event.Event {
	t.Helper()
	out, dups := streamEvents(t, msgs, false)
	if dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	return out
}

// StreamEventsDedup is StreamEvents for a log that may hold duplicates, as
// a producer without idempotence writes them when an acknowledgement is
// lost or a spool is resent: a record whose seq its stream has already
// reached must be byte for byte the record first seen with that seq, and is
// dropped, as the meter drops it; dups counts them. A record beyond the next
// seq (a gap or a reordering) fails t.
func StreamEventsDedup(t testing.TB, msgs []kafka.Message) (streams map[uuid.UUID][]*event.Event, dups int) {
	t.Helper()
	return streamEvents(t, msgs, true)
}

func streamEvents(t testing.TB, msgs []kafka.Message, allowDups bool) (map[uuid.UUID][]*event.Event, int) {
	t.Helper()
	out := map[uuid.UUID][]*event.Event{}
	values := map[uuid.UUID][][]byte{}
	part := map[uuid.UUID]int{}
	prev := map[uuid.UUID][event.ChainSize]byte{}
	dups := 0
	for _, m := range msgs {
		ev := &event.Event{}
		if err := event.Decode(m.Value, ev); err != nil {
			t.Fatalf("decode: %v", err)
		}
		id, err := uuid.FromBytes(ev.StreamId)
		if err != nil {
			t.Fatalf("stream id: %v", err)
		}
		if !bytes.Equal(m.Key, ev.StreamId) {
			t.Fatalf("key %x, stream %x", m.Key, ev.StreamId)
		}
		if p, ok := part[id]; ok && p != m.Partition {
			t.Fatalf("stream %s in partitions %d and %d", id, p, m.Partition)
		}
		part[id] = m.Partition
		if have := uint64(len(out[id])); allowDups && ev.Seq >= 1 && ev.Seq <= have {
			if !bytes.Equal(m.Value, values[id][ev.Seq-1]) {
				t.Fatalf("stream %s seq %d at offset %d: a duplicate that differs from the first", id, ev.Seq, m.Offset)
			}
			dups++
			continue
		}
		if want := uint64(len(out[id]) + 1); ev.Seq != want {
			t.Fatalf("stream %s: seq %d, want %d", id, ev.Seq, want)
		}
		if !event.Chained(m.Value, prev[id]) {
			t.Fatalf("stream %s seq %d: chain does not follow", id, ev.Seq)
		}
		prev[id] = [event.ChainSize]byte(ev.Chain)
		out[id] = append(out[id], ev)
		if allowDups {
			values[id] = append(values[id], m.Value)
		}
	}
	return out, dups
}
