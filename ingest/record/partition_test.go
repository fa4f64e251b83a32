package record_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/internal/eventtest"
)

// hashPartition is where kafka-go's Hash balancer puts a stream id among n
// partitions: where the recorder pins a stream opened while the topic had
// n.
func hashPartition(s *record.Stream, n int) int {
	id := s.ID()
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return (&kafka.Hash{}).Balance(kafka.Message{Key: id[:]}, ps...)
}

// TestPartitionsAdded: partitions are added to the topic while streams are
// open. New streams spread over all of them once the recorder has seen the
// change; a stream opened before keeps its partition for its whole life,
// even where the hash over the new count points elsewhere.
func TestPartitionsAdded(t *testing.T) {
	c := start(t, 2)
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.MetadataRefresh = 20 * time.Millisecond })
	ctx := context.Background()
	if n := r.Stats().Partitions; n != 2 {
		t.Fatalf("recorder sees %d partitions, want 2", n)
	}
	open := func() *record.Stream {
		s, err := r.Open(ctx, &event.StreamOpened{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	record3 := func(s *record.Stream) {
		for i := range 3 {
			if err := s.Record(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An old stream that the new count would move.
	var old *record.Stream
	var before []*record.Stream
	for old == nil {
		s := open()
		record3(s)
		if hashPartition(s, 2) != hashPartition(s, 4) {
			old = s
		} else {
			before = append(before, s)
		}
	}
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
	res, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 4}}})
	if err == nil && len(res.Errors) > 0 {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the recorder to see 4 partitions", func() bool { return r.Stats().Partitions == 4 })
	record3(old)
	var after []*record.Stream
	for range 16 {
		s := open()
		record3(s)
		after = append(after, s)
	}
	for _, s := range append(append(before, old), after...) {
		if err := s.Close(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := eventtest.ReadTopic(t, c.Brokers, topic, 4)
	got := eventtest.StreamEvents(t, msgs) // one partition per stream
	part := map[[16]byte]int{}
	for _, m := range msgs {
		part[[16]byte(m.Key)] = m.Partition
	}
	check := func(s *record.Stream, n int) {
		t.Helper()
		if p, want := part[s.ID()], hashPartition(s, n); p != want {
			t.Errorf("stream %s in partition %d, want %d (the hash over the %d partitions at its open)", s.ID(), p, want, n)
		}
		if len(got[s.ID()]) != 5 {
			t.Errorf("stream %s: %d events, want 5", s.ID(), len(got[s.ID()]))
		}
	}
	for _, s := range before {
		check(s, 2)
	}
	if len(got[old.ID()]) != 8 {
		t.Errorf("old stream: %d events, want 8", len(got[old.ID()]))
	}
	if p, want := part[old.ID()], hashPartition(old, 2); p != want {
		t.Errorf("old stream in partition %d, want %d", p, want)
	}
	for _, s := range after {
		check(s, 4)
	}
}
