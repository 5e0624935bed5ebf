package transport

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Defaults applied by Settings.WithDefaults when a field is zero.
const (
	DefaultConcurrency   = 1
	DefaultAckDeadline   = 30 * time.Second
	DefaultDialTimeout   = 5 * time.Second
	DefaultConsumerGroup = "levee"
)

// Settings are the keys of the `transport` section that every transport
// shares. The zero value is valid: WithDefaults fills it in.
type Settings struct {
	// Concurrency is the number of messages in flight per subscribed topic
	// (competing consumers). Zero means 1.
	Concurrency int
	// ConsumerGroup names the group of competing consumers as configured;
	// empty means none given (AMQP queue mode; "levee" on Kafka, NATS and
	// Redis, see Group).
	ConsumerGroup string
	// AckDeadline is how long a consumed message may stay unacknowledged
	// before the transport redelivers it, where it has such a deadline.
	// Zero means 30s.
	AckDeadline time.Duration
	// AckDeadlineSet says AckDeadline was configured rather than defaulted.
	// A transport whose deadline is a server setting (RabbitMQ's
	// consumer_timeout) then reports AckDeadline as the deadline the
	// operator declared, instead of the server's default.
	AckDeadlineSet bool
	// DialTimeout bounds the connection attempt of New. Zero means 5s.
	DialTimeout time.Duration
	// Logger receives the transport's logs. Nil means none.
	Logger watermill.LoggerAdapter
}

// WithDefaults returns s with every zero field set to its default.
func (s Settings) WithDefaults() Settings {
	if s.Concurrency == 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.AckDeadline == 0 {
		s.AckDeadline = DefaultAckDeadline
	}
	if s.DialTimeout == 0 {
		s.DialTimeout = DefaultDialTimeout
	}
	if s.Logger == nil {
		s.Logger = watermill.NopLogger{}
	}
	return s
}

// Group is the consumer group: ConsumerGroup, or "levee" when it is empty.
func (s Settings) Group() string {
	if s.ConsumerGroup == "" {
		return DefaultConsumerGroup
	}
	return s.ConsumerGroup
}

// Capabilities describes what a transport does, so middlewares can pick a
// safe behaviour (see docs/TRANSPORTS.md for the per-transport table).
type Capabilities struct {
	// Kind is the transport kind (gochannel, amqp, kafka, nats, redis, postgres).
	Kind string
	// System is the OpenTelemetry messaging.system value
	// (rabbitmq, kafka, nats, redis, postgresql, gochannel).
	System string
	// MaxInFlight is the most messages handed to handlers at once per
	// subscribed topic (the configured concurrency; for Kafka the partition
	// count bounds it too).
	MaxInFlight int
	// AckDeadline is how long a message may stay unacknowledged before the
	// transport redelivers it; zero means no deadline. Middlewares that
	// hold a message should bound the hold below it (max_hold).
	AckDeadline time.Duration
	// NativeDelay reports that a Nack carrying a RetryAfter delay is
	// redelivered after that delay by the broker (JetStream NakWithDelay;
	// on PostgreSQL a delayed row inserted in the message's transaction).
	// Elsewhere a Nack is redelivered at once (or after a fixed resend
	// interval), so a delay must be waited in process.
	NativeDelay bool
	// NativePriority reports that levee_priority orders delivery in the
	// broker (RabbitMQ classic queues with x-max-priority).
	NativePriority bool
	// DeliveryCount reports that consumed messages carry levee_delivery_count.
	DeliveryCount bool
	// OrderedPerKey reports that messages sharing levee_partition_key are
	// delivered in publish order even with concurrency > 1.
	OrderedPerKey bool
}

// Parts is what a per-transport New returns: a publisher, a subscriber
// with the configured concurrency per topic, the capabilities, and the
// connections to close after both.
type Parts struct {
	// Publisher publishes to the transport.
	Publisher message.Publisher
	// Subscriber consumes with the configured concurrency per topic.
	Subscriber message.Subscriber
	// Capabilities describes the transport.
	Capabilities Capabilities
	// Closers release what the publisher and the subscriber share (the
	// connections); Close runs them, in order, after closing both.
	Closers []func() error
	// DeleteTopics deletes what the transport created on the broker for
	// the topics (queues and exchanges, streams, tables, Kafka topics)
	// with the messages in them. Nil: the transport keeps nothing outside
	// the process (GoChannel).
	DeleteTopics func(ctx context.Context, topics []string) error
	// CheckTopic refuses a topic the transport cannot carry (PostgreSQL:
	// one too long for its table name). Nil: every topic is taken.
	CheckTopic func(topic string) error
}

// Close closes the subscriber, the publisher and then the Closers, in that
// order, and joins their errors. Call it once.
func (p *Parts) Close() error {
	var errs []error
	for _, c := range append([]func() error{p.Subscriber.Close, p.Publisher.Close}, p.Closers...) {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
