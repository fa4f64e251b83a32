package kafkatest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestKafkaGoAgainstKfake proves kafka-go's writer and ConsumerGroup work
// against the in-process cluster: every record produced is consumed once.
func TestKafkaGoAgainstKfake(t *testing.T) {
	const topic, n = "smoke", 1000
	c := Start(t, Options{Partitions: 3, Topics: []string{topic}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	w := &kafka.Writer{Addr: kafka.TCP(c.Brokers...), Topic: topic, Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i % 17)), Value: []byte(fmt.Sprint(i))}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{ID: "smoke", Brokers: c.Brokers, Topics: []string{topic}, StartOffset: kafka.FirstOffset})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gen, err := g.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	for _, a := range gen.Assignments[topic] {
		part, off := a.ID, a.Offset
		gen.Start(func(ctx context.Context) {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Brokers, Topic: topic, Partition: part, MaxWait: 2 * time.Second})
			defer r.Close()
			if off < 0 {
				off = kafka.FirstOffset
			}
			if err := r.SetOffset(off); err != nil {
				t.Error(err)
				return
			}
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				seen[string(m.Value)]++
				if len(seen) == n {
					close(done)
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("consumed %d of %d", len(seen), n)
	}
	for v, k := range seen {
		if k != 1 {
			t.Fatalf("value %s consumed %d times", v, k)
		}
	}
}
