package adapters

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

func buildKafka(ctx context.Context, o *options) (*built, error) {
	tc := o.tc
	brokers := tc.Kafka.Brokers
	var perr error
	reachable := false
	for _, b := range brokers {
		if err := probe(ctx, KindKafka, b, tc.dialTimeout()); err == nil {
			reachable = true
			break
		} else {
			perr = err
		}
	}
	if !reachable {
		return nil, perr
	}
	n := tc.concurrency()
	parts := tc.kafkaPartitions()

	subCfg := kafka.DefaultSaramaSubscriberConfig()
	subCfg.Version = sarama.V2_1_0_0
	subCfg.Net.DialTimeout = tc.dialTimeout()
	subCfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	subCfg.Metadata.Retry.Max = 2
	subCfg.Metadata.Retry.Backoff = 250 * time.Millisecond

	pubCfg := kafka.DefaultSaramaSyncPublisherConfig()
	pubCfg.Version = sarama.V2_1_0_0
	pubCfg.Net.DialTimeout = tc.dialTimeout()
	pubCfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	pubCfg.Producer.Partitioner = newKafkaPartitioner

	marshaler := kafkaMarshaler{}
	topicDetails := &sarama.TopicDetail{NumPartitions: int32(parts), ReplicationFactor: 1}
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:                brokers,
		Unmarshaler:            marshaler,
		OverwriteSaramaConfig:  subCfg,
		ConsumerGroup:          tc.consumerGroup(),
		InitializeTopicDetails: topicDetails,
	}, o.logger)
	if err != nil {
		return nil, fmt.Errorf("kafka at %s: subscriber: %w", strings.Join(brokers, ","), err)
	}
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:               brokers,
		Marshaler:             marshaler,
		OverwriteSaramaConfig: pubCfg,
	}, o.logger)
	if err != nil {
		_ = sub.Close()
		if errors.Is(err, sarama.ErrOutOfBrokers) {
			return nil, unreachable(KindKafka, strings.Join(brokers, ","), err)
		}
		return nil, fmt.Errorf("kafka at %s: publisher: %w", strings.Join(brokers, ","), err)
	}
	topics := &kafkaTopics{init: sub.SubscribeInitialize}
	// One group member per topic consumes every partition, one message per
	// partition at a time; the limiter caps the total at the concurrency.
	limited, err := NewLimiter(kafkaSubscriber{sub: sub, topics: topics}, n)
	if err != nil {
		_ = sub.Close()
		_ = pub.Close()
		return nil, err
	}
	return &built{
		pub:  kafkaPublisher{pub: pub, topics: topics},
		sub:  limited,
		caps: o.tc.Capabilities(),
	}, nil
}

// kafkaTopics creates each topic once with the configured partition count,
// so a consumer group gets one partition per in-flight message.
type kafkaTopics struct {
	init func(topic string) error
	mu   sync.Mutex
	done map[string]bool // guarded by mu
}

func (k *kafkaTopics) ensure(topic string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done[topic] {
		return nil
	}
	if err := k.init(topic); err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("kafka: create topic %q: %w", topic, err)
	}
	if k.done == nil {
		k.done = map[string]bool{}
	}
	k.done[topic] = true
	return nil
}

type kafkaPublisher struct {
	pub    *kafka.Publisher
	topics *kafkaTopics
}

func (p kafkaPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.topics.ensure(topic); err != nil {
		return err
	}
	return p.pub.Publish(topic, msgs...)
}

func (p kafkaPublisher) Close() error { return p.pub.Close() }

// kafkaSubscriber subscribes one group member per Subscribe; the group's
// partitions are consumed concurrently, one message per partition at a time.
type kafkaSubscriber struct {
	sub    *kafka.Subscriber
	topics *kafkaTopics
}

func (s kafkaSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.topics.ensure(topic); err != nil {
		return nil, err
	}
	return s.sub.Subscribe(ctx, topic)
}

func (s kafkaSubscriber) SubscribeInitialize(topic string) error { return s.topics.ensure(topic) }

func (s kafkaSubscriber) Close() error { return s.sub.Close() }

// kafkaMarshaler is watermill-kafka's DefaultMarshaler with the record key
// taken from levee_partition_key (nil key, spread by the partitioner, when
// absent).
type kafkaMarshaler struct{ kafka.DefaultMarshaler }

func (m kafkaMarshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	pm, err := m.DefaultMarshaler.Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	if key := msg.Metadata.Get(MetadataPartitionKey); key != "" {
		pm.Key = sarama.StringEncoder(key)
	}
	return pm, nil
}

// kafkaPartitioner hashes keyed records (levee_partition_key), so one key
// stays on one partition and in order, and spreads unkeyed records
// round-robin, so every partition, and so every in-flight slot, gets work.
type kafkaPartitioner struct {
	hash sarama.Partitioner
	rr   sarama.Partitioner
}

func newKafkaPartitioner(topic string) sarama.Partitioner {
	return kafkaPartitioner{hash: sarama.NewHashPartitioner(topic), rr: sarama.NewRoundRobinPartitioner(topic)}
}

func (p kafkaPartitioner) Partition(msg *sarama.ProducerMessage, n int32) (int32, error) {
	if msg.Key == nil {
		return p.rr.Partition(msg, n)
	}
	return p.hash.Partition(msg, n)
}

func (p kafkaPartitioner) RequiresConsistency() bool { return true }
