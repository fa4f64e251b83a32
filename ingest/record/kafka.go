package record

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// defaultMaxMessageBytes is Kafka's default message.max.bytes, assumed when
// the topic's max.message.bytes cannot be learnt.
const defaultMaxMessageBytes = 1048588

// recordBatchOverhead is the v2 record batch header a broker counts against
// max.message.bytes, beyond the records.
const recordBatchOverhead = 61

// eventOverhead is what a record costs in a batch beyond its value (length
// varints, attributes, deltas, the 16-byte key, header count), rounded up.
const eventOverhead = 64

// kafkaClient produces to the topic's partitions with kafka-go's Client: a
// produce request names its partition and the transport routes it to the
// leader, one TCP connection per request in flight.
type kafkaClient struct {
	topic     string
	addr      net.Addr
	transport *kafka.Transport
	client    *kafka.Client
	// lastReset is when the transport's cached metadata was last dropped
	// (unix ns), so errors refresh it at most once per second.
	lastReset atomic.Int64
}

func newKafkaClient(cfg *Config) *kafkaClient {
	t := &kafka.Transport{
		ClientID:       "relaymeter-recorder",
		MetadataTTL:    cfg.MetadataRefresh,
		MetadataTopics: []string{cfg.Topic},
		DialTimeout:    5 * time.Second,
	}
	addr := kafka.TCP(cfg.Brokers...)
	return &kafkaClient{topic: cfg.Topic, addr: addr, transport: t, client: &kafka.Client{Addr: addr, Transport: t}}
}

// partitions returns the topic's partition count as the transport knows it.
func (k *kafkaClient) partitions(ctx context.Context) (int, error) {
	md, err := k.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range md.Topics {
		if t.Name != k.topic {
			continue
		}
		if t.Error != nil {
			return 0, t.Error
		}
		if len(t.Partitions) == 0 {
			return 0, fmt.Errorf("topic %s has no partitions", k.topic)
		}
		return len(t.Partitions), nil
	}
	return 0, fmt.Errorf("topic %s: %w", k.topic, kafka.UnknownTopicOrPartition)
}

// maxMessageBytes asks the cluster for the topic's max.message.bytes.
func (k *kafkaClient) maxMessageBytes(ctx context.Context) (int, error) {
	res, err := k.client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: k.topic, ConfigNames: []string{"max.message.bytes"},
	}}})
	if err != nil {
		return 0, err
	}
	for _, r := range res.Resources {
		if r.Error != nil {
			return 0, r.Error
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "max.message.bytes" {
				n, err := strconv.Atoi(e.ConfigValue)
				if err != nil || n <= recordBatchOverhead+eventOverhead {
					return 0, fmt.Errorf("max.message.bytes %q unusable", e.ConfigValue)
				}
				return n, nil
			}
		}
	}
	return 0, errors.New("max.message.bytes not in the answer")
}

// refresh drops the transport's cached metadata, at most once a second, so
// the next request learns leaders and partitions afresh. Requests in
// flight finish on their connections.
func (k *kafkaClient) refresh() {
	now := time.Now().UnixNano()
	last := k.lastReset.Load()
	if now-last < int64(time.Second) || !k.lastReset.CompareAndSwap(last, now) {
		return
	}
	k.transport.CloseIdleConnections()
}

func (k *kafkaClient) close() { k.transport.CloseIdleConnections() }

// outcome classifies a produce result.
type outcome int

const (
	delivered outcome = iota // acknowledged: every record is in the log
	refused                  // a record or the batch can never be taken as is
	failed                   // anything else: retry, or spool
)

// produce sends recs to partition as one record batch, waiting for every
// in-sync replica. With refused, badIdx names the refused records when the
// broker said which (else the whole batch is suspect).
func (k *kafkaClient) produce(ctx context.Context, partition int, rs *recordSet) (o outcome, badIdx []int, err error) {
	res, err := k.client.Produce(ctx, &kafka.ProduceRequest{
		Topic: k.topic, Partition: partition, RequiredAcks: kafka.RequireAll, Records: rs,
	})
	if err == nil {
		err = res.Error
	}
	if err == nil {
		return delivered, nil, nil
	}
	if !isRefusal(err) {
		return failed, nil, err
	}
	if res != nil {
		for i := range res.RecordErrors {
			badIdx = append(badIdx, i)
		}
	}
	return refused, badIdx, err
}

// isRefusal reports errors that retrying the same records cannot fix.
func isRefusal(err error) bool {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke {
	case kafka.MessageSizeTooLarge, kafka.InvalidRecord, kafka.InvalidMessage, kafka.RecordListTooLarge:
		return true
	}
	return false
}

// partitionOf pins a stream to a partition the way kafka-go's Hash balancer
// (and Sarama's) places a key: FNV-1a of the key, as an int32, modulo n.
func partitionOf(id []byte, n int) int {
	h := uint32(2166136261)
	for _, b := range id {
		h ^= uint32(b)
		h *= 16777619
	}
	p := int32(h) % int32(n)
	if p < 0 {
		p = -p
	}
	return int(p)
}
