package record_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/relaymeter/relaymeter/ingest/event"
	"github.com/relaymeter/relaymeter/ingest/record"
	"github.com/relaymeter/relaymeter/internal/eventtest"
)

// setTopicConfig sets one config of topic on the cluster.
func setTopicConfig(t testing.TB, brokers []string, topic, name, value string) {
	t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...)}
	res, err := cl.IncrementalAlterConfigs(context.Background(), &kafka.IncrementalAlterConfigsRequest{
		Resources: []kafka.IncrementalAlterConfigsRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
			Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: name, Value: value, ConfigOperation: kafka.ConfigOperationSet}}}},
	})
	if err == nil && len(res.Resources) == 1 {
		err = res.Resources[0].Error
	}
	if err != nil {
		t.Fatalf("set %s=%s on %s: %v", name, value, topic, err)
	}
}

func bigMessage(n int) *event.Message {
	p := []byte(strings.Repeat("x", n))
	captured, sum := record.Payload(-1, p)
	return &event.Message{Direction: event.Direction_CLIENT_TO_UPSTREAM, Role: event.Role_REQUEST, Method: "eth_sendRawTransaction",
		WireSize: uint64(n), PayloadSize: uint64(n), Payload: captured, PayloadSha256: sum[:]}
}

// TestRejected: after the recorder started, the topic's max.message.bytes
// drops below one stream's event. Kafka answers MESSAGE_TOO_LARGE for the
// batches holding it; the recorder splits them until that event stands
// alone, rejects it, and delivers the rest. That stream's WaitDurable
// fails with ErrRejected from the event's seq on (not before); the other
// streams, sharing its partition and batches, lose nothing.
func TestRejected(t *testing.T) {
	c := start(t, 1)
	reg := prometheus.NewRegistry()
	var logs logBuffer
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.Registerer, cfg.Logger = reg, logs.logger() })
	setTopicConfig(t, c.Brokers, topic, "max.message.bytes", "4096")
	ctx := context.Background()
	const others, n, big = 3, 20, 10
	open := func() *record.Stream {
		s, err := r.Open(ctx, &event.StreamOpened{Service: "eth"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := open()
	var bs []*record.Stream
	for range others {
		bs = append(bs, open())
	}
	// Hold the next produce in the broker while the streams append, so that
	// their events, interleaved, queue up and share one batch.
	release := make(chan struct{})
	var held sync.Once
	c.Fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		held.Do(func() { c.Fake.SleepControl(func() { <-release }) })
		return nil, nil, false
	})
	if err := a.Record(ctx, msg(event.Direction_UPSTREAM_TO_CLIENT, 0)); err != nil {
		t.Fatal(err)
	}
	var aSeq []uint64
	for i := range n {
		m := msg(event.Direction_CLIENT_TO_UPSTREAM, i)
		if i == big {
			m = bigMessage(8 << 10)
		}
		seq, err := a.Append(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		aSeq = append(aSeq, seq)
		for _, b := range bs {
			if err := b.Record(ctx, msg(event.Direction_CLIENT_TO_UPSTREAM, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(release)
	for i, seq := range aSeq {
		err := a.WaitDurable(ctx, seq)
		if i < big && err != nil {
			t.Fatalf("seq %d, before the refused one: %v", seq, err)
		}
		if i >= big && !errors.Is(err, record.ErrRejected) {
			t.Fatalf("seq %d, from the refused one on: %v, want ErrRejected", seq, err)
		}
	}
	for _, s := range append(bs, a) {
		if err := s.Close(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The queued batch of 20 events per stream and more was refused, then
	// halved until the big event stood alone: six refusals at least.
	if st := r.Stats(); st.Rejected != 1 || st.Failed != 0 || st.Buffered != 0 || st.WriteErrors < 6 {
		t.Fatalf("stats %+v, want 1 rejected after at least 6 refused produces", st)
	}
	if got := metric(t, reg, "relaymeter_recorder_events_rejected_total"); got != 1 {
		t.Errorf("events_rejected_total = %v, want 1", got)
	}
	bigSeq := aSeq[big]
	lines := logs.lines("refused an event for good")
	if len(lines) != 1 || !strings.Contains(lines[0], "stream="+a.ID().String()) || !strings.Contains(lines[0], fmt.Sprintf("seq=%d", bigSeq)) ||
		!strings.Contains(lines[0], "bytes=") || !strings.Contains(lines[0], "too large") || !strings.Contains(lines[0], "level=ERROR") {
		t.Fatalf("rejection logs: %q", lines)
	}

	// The other streams are whole; the refused stream lacks just that seq.
	msgs := eventtest.ReadTopic(t, c.Brokers, topic, 1)
	var rest []kafka.Message
	var aSeqs []uint64
	for _, m := range msgs {
		id, _ := event.PeekStreamID(m.Value)
		if uuid.UUID(id) != a.ID() {
			rest = append(rest, m)
			continue
		}
		var ev event.Event
		if err := event.Decode(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		aSeqs = append(aSeqs, ev.Seq)
	}
	got := eventtest.StreamEvents(t, rest)
	for _, b := range bs {
		if len(got[b.ID()]) != n+2 {
			t.Fatalf("stream %s: %d events, want %d", b.ID(), len(got[b.ID()]), n+2)
		}
	}
	if len(aSeqs) != n+2 {
		t.Fatalf("refused stream: seqs %v, want 1..%d without %d", aSeqs, n+3, bigSeq)
	}
	for i, seq := range aSeqs {
		want := uint64(i + 1)
		if want >= bigSeq {
			want++
		}
		if seq != want {
			t.Fatalf("refused stream: seqs %v, want 1..%d without %d", aSeqs, n+3, bigSeq)
		}
	}
}

// TestMaxMessageBytesLearnt: a topic with a small max.message.bytes caps
// the events Append accepts, so an event Kafka would refuse is refused
// before it is sealed (ErrEventTooLarge, no seq taken) and the edge can
// re-append it without its payload.
func TestMaxMessageBytesLearnt(t *testing.T) {
	c := start(t, 1)
	const small = "relaymeter.small.v1"
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...)}
	res, err := cl.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: small, NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "2048"}},
	}}})
	if err == nil {
		err = res.Errors[small]
	}
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder(t, c, func(cfg *record.Config) { cfg.Topic = small })
	ctx := context.Background()
	s, err := r.Open(ctx, &event.StreamOpened{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, bigMessage(2000)); !errors.Is(err, record.ErrEventTooLarge) {
		t.Fatalf("append of an event beyond max.message.bytes: %v, want ErrEventTooLarge", err)
	}
	m := bigMessage(2000)
	m.Payload = nil // as the edge re-appends it
	seq, err := s.Append(ctx, m)
	if err != nil || seq != 2 {
		t.Fatalf("append without the payload: seq %d, %v; want seq 2", seq, err)
	}
	if _, err := s.Append(ctx, bigMessage(1500)); err != nil {
		t.Fatalf("append of an event within max.message.bytes: %v", err)
	}
	if err := s.Close(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	evs := eventtest.StreamEvents(t, eventtest.ReadTopic(t, c.Brokers, small, 1))[s.ID()]
	if len(evs) != 4 || evs[1].GetMessage().GetPayload() != nil || len(evs[2].GetMessage().GetPayload()) != 1500 {
		t.Fatalf("%d events, want 4: opened, the payload-less one, the 1500-byte one, closed", len(evs))
	}
	if st := r.Stats(); st.Rejected != 0 || st.Written != 4 {
		t.Fatalf("stats %+v, want 4 written, none rejected", st)
	}
}
