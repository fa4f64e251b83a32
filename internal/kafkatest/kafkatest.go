// Package kafkatest starts Kafka for tests: an in-process kfake cluster that
// speaks the real Kafka protocol on loopback, or the brokers named by
// KAFKA_BROKERS.
package kafkatest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Options shape a test cluster.
type Options struct {
	// Partitions of each topic created up front (default 4).
	Partitions int
	// Topics to create up front.
	Topics []string
	// DataDir, when set, makes the cluster durable there so a test can
	// restart it and find the log again.
	DataDir string
	// Ports pins the listen port (0: any free port); a restarted durable
	// cluster needs its old port so clients reconnect.
	Port int
}

// Cluster is a running test cluster.
type Cluster struct {
	// Brokers are the bootstrap addresses.
	Brokers []string
	// Fake is the in-process cluster, nil when KAFKA_BROKERS names real
	// brokers; tests use its control hooks to inject broker errors.
	Fake *kfake.Cluster
}

// Start starts a cluster for t and stops it when t ends. With KAFKA_BROKERS
// set it creates the topics there instead, under names unique to t.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Partitions == 0 {
		o.Partitions = 4
	}
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		brokers := strings.Split(env, ",")
		if err := CreateTopics(brokers, o.Partitions, o.Topics...); err != nil {
			t.Fatalf("kafkatest: %v", err)
		}
		return &Cluster{Brokers: brokers}
	}
	c, err := StartFake(o)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(c.Close)
	return &Cluster{Brokers: c.ListenAddrs(), Fake: c}
}

// StartFake starts an in-process kfake cluster with one broker on loopback.
func StartFake(o Options) (*kfake.Cluster, error) {
	if o.Partitions == 0 {
		o.Partitions = 4
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(o.Partitions),
		kfake.AllowAutoTopicCreation(),
		kfake.Ports(o.Port),
	}
	if len(o.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(o.Partitions), o.Topics...))
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: start kfake: %w", err)
	}
	return c, nil
}

// CreateTopics creates topics on real brokers, ignoring ones that exist.
func CreateTopics(brokers []string, partitions int, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return fmt.Errorf("kafkatest: dial %s: %w", brokers[0], err)
	}
	defer conn.Close()
	cfgs := make([]kafka.TopicConfig, len(topics))
	for i, tp := range topics {
		cfgs[i] = kafka.TopicConfig{Topic: tp, NumPartitions: partitions, ReplicationFactor: 1}
	}
	if err := conn.CreateTopics(cfgs...); err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("kafkatest: create topics: %w", err)
	}
	return nil
}
