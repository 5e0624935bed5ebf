// Package kafka is Levee's Kafka transport (watermill-kafka v3 on sarama):
// topics created with at least one partition per in-flight message, one
// group member per subscribed topic consuming every partition one message
// at a time, the total capped at the concurrency, and records keyed by
// levee_partition_key so that one key keeps its order. A message's context
// ends when a consumer-group rebalance takes its partition away, and the
// message goes back to the partition's next owner uncommitted
// (session.go). A subscription that ends (a router's Close) settles its
// messages in flight first, so the ones whose handlers finish within the
// grace are committed rather than run again (subscriber.go).
//
// The adapters facade builds it from `transport: {kind: kafka, kafka:
// {...}}`. The publisher and the subscriber New returns are safe for
// concurrent use.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/internal/fanin"
	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/lru"
	"github.com/levee-dev/levee/internal/redact"
)

// Kind is the transport kind in the `transport` section.
const Kind = "kafka"

// MetadataPartitionKey is the Kafka record key: messages with the same key
// go to one partition and keep their order. Without it records are spread
// round-robin over the partitions.
const MetadataPartitionKey = "levee_partition_key"

// Config is the `transport.kafka` section (watermill-kafka v3).
type Config struct {
	// Brokers lists host:port seed brokers. Required.
	Brokers []string `yaml:"brokers"`
	// Partitions is the partition count used when Levee creates a topic.
	// Zero means the transport concurrency (in YAML remove the key: an
	// explicit 0 is an error); it must not be below it, since
	// a Kafka group runs one message per partition at a time.
	Partitions int `yaml:"partitions" levee:"nonzero"`
}

// Validate checks the section against the settings. Errors wrap
// transport.ErrInvalidConfig and name the key (kafka.brokers, ...).
func (c Config) Validate(s transport.Settings) error {
	if len(c.Brokers) == 0 {
		return kit.Invalid("kafka.brokers", "kind kafka needs at least one broker (host:port)")
	}
	for i, b := range c.Brokers {
		if err := kit.CheckHostPort(b); err != nil {
			return kit.Invalid(fmt.Sprintf("kafka.brokers[%d]", i), "%v", err)
		}
	}
	n := s.WithDefaults().Concurrency
	if p := c.Partitions; p != 0 && p < n {
		return kit.Invalid("kafka.partitions", "%d is below concurrency %d: a Kafka group runs one message per partition at a time", p, n)
	}
	if c.Partitions < 0 {
		return kit.Invalid("kafka.partitions", "must not be negative, got %d", c.Partitions)
	}
	return nil
}

// partitions is the partition count of the topics Levee creates.
func (c Config) partitions(s transport.Settings) int {
	if c.Partitions > 0 {
		return c.Partitions
	}
	return s.WithDefaults().Concurrency
}

// Capabilities returns what the transport does with settings s: at most
// min(concurrency, partitions) in flight, per-key order, no deadline.
func (c Config) Capabilities(s transport.Settings) transport.Capabilities {
	return transport.Capabilities{
		Kind:          Kind,
		System:        "kafka",
		MaxInFlight:   min(s.WithDefaults().Concurrency, c.partitions(s)),
		OrderedPerKey: true,
	}
}

// New validates c, probes the seed brokers within the dial timeout (each
// must answer a Kafka request, not just accept a connection) and
// returns the transport. Errors wrap transport.ErrInvalidConfig or
// ErrUnreachable (naming the brokers). New does not retry.
func New(ctx context.Context, c Config, s transport.Settings) (*transport.Parts, error) {
	s = s.WithDefaults()
	if err := c.Validate(s); err != nil {
		return nil, err
	}
	p, err := build(ctx, c, s)
	return p, redact.Error(err, c.Brokers...)
}

func build(ctx context.Context, c Config, s transport.Settings) (*transport.Parts, error) {
	brokers := c.Brokers
	var perr error
	reachable := false
	for _, b := range brokers {
		if err := probe(ctx, b, s.DialTimeout); err == nil {
			reachable = true
			break
		} else {
			perr = err
		}
	}
	if !reachable {
		return nil, perr
	}
	n := s.Concurrency
	parts := c.partitions(s)

	subCfg := wkafka.DefaultSaramaSubscriberConfig()
	subCfg.Version = sarama.V2_1_0_0
	subCfg.Net.DialTimeout = s.DialTimeout
	subCfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	subCfg.Metadata.Retry.Max = 2
	subCfg.Metadata.Retry.Backoff = 250 * time.Millisecond

	pubCfg := wkafka.DefaultSaramaSyncPublisherConfig()
	pubCfg.Version = sarama.V2_1_0_0
	pubCfg.Net.DialTimeout = s.DialTimeout
	pubCfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	pubCfg.Producer.Partitioner = newPartitioner
	// The broker decides how large a message may be (message.max.bytes,
	// per topic max.message.bytes), not a client-side copy of its default:
	// a dead letter a little over 1 MB that sarama refused locally could
	// never be let through by raising the DLQ topic's limit.
	pubCfg.Producer.MaxMessageBytes = int(sarama.MaxRequestSize) - 1024

	m := marshaler{}
	sess := newSessions()
	topicDetails := &sarama.TopicDetail{NumPartitions: int32(parts), ReplicationFactor: 1}
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers:                brokers,
		Unmarshaler:            m,
		OverwriteSaramaConfig:  subCfg,
		ConsumerGroup:          s.Group(),
		InitializeTopicDetails: topicDetails,
		// Not tracing: the hook through which each message learns the
		// session of its partition's claim (session.go).
		Tracer: tracer{sessions: sess},
	}, s.Logger)
	if err != nil {
		return nil, fmt.Errorf("levee/kafka: subscriber at %s: %w", strings.Join(brokers, ","), err)
	}
	pub, err := wkafka.NewPublisher(wkafka.PublisherConfig{
		Brokers:               brokers,
		Marshaler:             m,
		OverwriteSaramaConfig: pubCfg,
	}, s.Logger)
	if err != nil {
		_ = sub.Close()
		if errors.Is(err, sarama.ErrOutOfBrokers) {
			return nil, kit.Unreachable(Kind, strings.Join(brokers, ","), err)
		}
		return nil, fmt.Errorf("levee/kafka: publisher at %s: %w", strings.Join(brokers, ","), err)
	}
	t := &topics{init: sub.SubscribeInitialize}
	// One group member per topic consumes every partition, one message per
	// partition at a time; the limiter caps the total at the concurrency.
	limited, err := fanin.NewLimiter(newSubscriber(sub, t, sess), n)
	if err != nil {
		_ = sub.Close()
		_ = pub.Close()
		return nil, err
	}
	return &transport.Parts{
		Publisher:    publisher{pub: pub, topics: t, limit: topicLimit(brokers, subCfg)},
		Subscriber:   limited,
		Capabilities: c.Capabilities(s),
		DeleteTopics: deleteTopics(brokers, subCfg, t),
	}, nil
}

// topics creates each topic once with the configured partition count,
// so a consumer group gets one partition per in-flight message.
type topics struct {
	init func(topic string) error
	mu   sync.Mutex
	done map[string]bool // guarded by mu
}

// forget makes the next use of topic create it again (after a delete).
func (k *topics) forget(topic string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.done, topic)
}

func (k *topics) ensure(topic string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done[topic] {
		return nil
	}
	if err := k.init(topic); err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("levee/kafka: create topic %q: %w", topic, err)
	}
	if k.done == nil {
		k.done = map[string]bool{}
	}
	k.done[topic] = true
	return nil
}

type publisher struct {
	pub    *wkafka.Publisher
	topics *topics
	// limit returns a topic's max.message.bytes as the broker reports it
	// (0 when it does not answer).
	limit func(topic string) int64
}

// Publish publishes msgs to topic; a batch the broker refuses for its
// size (MESSAGE_TOO_LARGE) is reported as a *levee.TooLargeError with the
// topic's max.message.bytes.
func (p publisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.topics.ensure(topic); err != nil {
		return err
	}
	err := p.pub.Publish(topic, msgs...)
	if err != nil && errors.Is(err, sarama.ErrMessageSizeTooLarge) {
		return &levee.TooLargeError{Limit: p.limit(topic), Err: err}
	}
	return err
}

func (p publisher) Close() error { return p.pub.Close() }

// marshaler is watermill-kafka's DefaultMarshaler with the record key
// taken from levee_partition_key (nil key, spread by the partitioner, when
// absent).
type marshaler struct{ wkafka.DefaultMarshaler }

func (m marshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	pm, err := m.DefaultMarshaler.Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	if key := msg.Metadata.Get(MetadataPartitionKey); key != "" {
		pm.Key = sarama.StringEncoder(key)
	}
	return pm, nil
}

// partitioner hashes keyed records (levee_partition_key), so one key
// stays on one partition and in order, and spreads unkeyed records
// round-robin, so every partition, and so every in-flight slot, gets work.
type partitioner struct {
	hash sarama.Partitioner
	rr   sarama.Partitioner
}

func newPartitioner(topic string) sarama.Partitioner {
	return partitioner{hash: sarama.NewHashPartitioner(topic), rr: sarama.NewRoundRobinPartitioner(topic)}
}

func (p partitioner) Partition(msg *sarama.ProducerMessage, n int32) (int32, error) {
	if msg.Key == nil {
		return p.rr.Partition(msg, n)
	}
	return p.hash.Partition(msg, n)
}

func (p partitioner) RequiresConsistency() bool { return true }

// topicLimit returns a function that asks the brokers for a topic's
// max.message.bytes (the broker's message.max.bytes unless the topic sets
// its own; 0 when they do not answer). It is called only after a refusal,
// and its answer is remembered per topic for
// limitTTL: a refusal for size comes in bursts (a letter is refused, then
// its compacted and its core forms), and each question opens a cluster
// admin of its own.
func topicLimit(brokers []string, cfg *sarama.Config) func(string) int64 {
	return newLimitCache(func(topic string) int64 {
		admin, err := sarama.NewClusterAdmin(brokers, cfg)
		if err != nil {
			return 0
		}
		defer admin.Close()
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"max.message.bytes"}})
		if err != nil {
			return 0
		}
		for _, e := range entries {
			if e.Name == "max.message.bytes" {
				if n, err := strconv.ParseInt(e.Value, 10, 64); err == nil && n > 0 {
					return n
				}
			}
		}
		return 0
	}, time.Now).get
}

// limitTTL is how long a topic's max.message.bytes is remembered (an
// operator who raises it sees the new value in the logs within it);
// limitTopics bounds the topics remembered.
const (
	limitTTL    = time.Minute
	limitTopics = 1024
)

// limitCache remembers lookup's answers per topic for limitTTL; an
// unanswered lookup (0) is not remembered. Safe for concurrent use.
type limitCache struct {
	lookup func(topic string) int64
	now    func() time.Time
	m      *lru.Map[string, limitEntry]
}

type limitEntry struct {
	n  int64
	at time.Time
}

func newLimitCache(lookup func(string) int64, now func() time.Time) *limitCache {
	return &limitCache{lookup: lookup, now: now, m: lru.New[string, limitEntry](limitTopics)}
}

func (c *limitCache) get(topic string) int64 {
	now := c.now()
	if e, ok := c.m.Get(topic); ok && now.Sub(e.at) < limitTTL {
		return e.n
	}
	n := c.lookup(topic)
	if n > 0 {
		c.m.Put(topic, limitEntry{n: n, at: now})
	}
	return n
}

// deleteTopics returns the transport's DeleteTopics: each topic deleted
// through a cluster admin (an unknown one skipped) and forgotten, so the
// next use creates it again.
func deleteTopics(brokers []string, cfg *sarama.Config, t *topics) func(context.Context, []string) error {
	return func(_ context.Context, names []string) error {
		admin, err := sarama.NewClusterAdmin(brokers, cfg)
		if err != nil {
			return fmt.Errorf("levee/kafka: delete topics: %w", err)
		}
		defer admin.Close()
		var errs []error
		for _, topic := range names {
			t.forget(topic)
			if err := admin.DeleteTopic(topic); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				errs = append(errs, fmt.Errorf("levee/kafka: delete topic %q: %w", topic, err))
			}
		}
		return errors.Join(errs...)
	}
}
