package adapters

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/amqp"
	"github.com/levee-dev/levee/adapters/gochannel"
	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/kafka"
	"github.com/levee-dev/levee/adapters/nats"
	"github.com/levee-dev/levee/adapters/postgres"
	"github.com/levee-dev/levee/adapters/redis"
	"github.com/levee-dev/levee/adapters/transport"
)

// Metadata keys this package reads or writes.
const (
	// MetadataDeliveryCount is the 1-based delivery attempt of a consumed
	// message, set where the transport counts deliveries (NATS JetStream;
	// RabbitMQ quorum queues). Absent elsewhere.
	MetadataDeliveryCount = levee.KeyDeliveryCount
	// MetadataPriority is the message priority (integer, higher first).
	// The AMQP publisher maps it onto the publishing priority, clamped to
	// 0..max_priority; a missing or garbage value means priority 0.
	MetadataPriority = levee.KeyPriority
	// MetadataPartitionKey is the Kafka record key: messages with the same
	// key go to one partition and keep their order. Without it records are
	// spread round-robin over the partitions.
	MetadataPartitionKey = kafka.MetadataPartitionKey
	// MetadataRetryAfter is written by (*Transport).Middleware when the
	// handler's error asks for a delayed redelivery (a Go duration string);
	// transports with native delay read it on Nack.
	MetadataRetryAfter = levee.KeyRetryAfter
	// MetadataRedeliverAt is set by the PostgreSQL transport on a message
	// it requeued with a delay (a Nack carrying MetadataRetryAfter): the
	// time, in Unix milliseconds by the database's clock, before which the
	// row is not delivered. A value that is not a plain integer is ignored
	// (the row is delivered).
	MetadataRedeliverAt = levee.KeyRedeliverAt
)

// egressPublisher is the publisher a Transport hands out: a message that
// carries a control key (typically a consumed message forwarded as is) is
// published as a copy without it, so a control key never leaves the
// process on a publish; the caller's message is left unchanged.
type egressPublisher struct{ message.Publisher }

func (p egressPublisher) Publish(topic string, msgs ...*message.Message) error {
	copied := false
	for i, m := range msgs {
		if m == nil || !levee.HasControl(m.Metadata) && !kit.HasReserved(m.Metadata) {
			continue
		}
		if !copied { // the caller's slice is left unchanged too
			msgs, copied = append([]*message.Message(nil), msgs...), true
		}
		c := message.NewMessage(m.UUID, m.Payload)
		c.Metadata = make(message.Metadata, len(m.Metadata))
		for k, v := range m.Metadata {
			c.Metadata[k] = v
		}
		kit.StripControl(c.Metadata)
		c.SetContext(m.Context())
		msgs[i] = c
	}
	return p.Publisher.Publish(topic, msgs...)
}

// Capabilities describes what a transport does, so middlewares can pick a
// safe behaviour: Kind, System (the OpenTelemetry messaging.system),
// MaxInFlight, AckDeadline, NativeDelay, NativePriority, DeliveryCount and
// OrderedPerKey, documented on transport.Capabilities (see
// docs/TRANSPORTS.md for the per-transport table).
type Capabilities = transport.Capabilities

// Capabilities returns what the transport this section describes can do,
// without connecting to it (New reports the same value in
// Transport.Capabilities). An invalid section gives the zero value.
func (c TransportConfig) Capabilities() Capabilities {
	if c.validate() != nil {
		return Capabilities{}
	}
	return c.section().Capabilities(c.settings(nil))
}

// CheckTopic is Transport.CheckTopic without a transport: an error when
// the configured kind cannot carry topic (PostgreSQL: longer than
// postgres.MaxTopicLen), for a checker of the topics a file names (the
// dead-letter topics, in `levee config check`).
func (c TransportConfig) CheckTopic(topic string) error {
	if c.kind() == KindPostgres {
		return postgres.CheckTopic(topic)
	}
	return nil
}

// Transport is a publisher and a subscriber built from one TransportConfig.
// Publisher and Subscriber are safe for concurrent use as their Watermill
// implementations are; Close is idempotent.
type Transport struct {
	// Publisher publishes to the transport.
	Publisher message.Publisher
	// Subscriber consumes with the configured concurrency per topic.
	Subscriber message.Subscriber
	// Capabilities describes the transport.
	Capabilities Capabilities

	parts     *transport.Parts
	closeOnce sync.Once
	closeErr  error
}

// Build builds the transport described by cfg, logging through logger
// (nil for none). It is New(ctx, append(cfg.Options(), WithLogger(logger))...).
func Build(ctx context.Context, cfg TransportConfig, logger watermill.LoggerAdapter) (*Transport, error) {
	return New(ctx, append(cfg.Options(), WithLogger(logger))...)
}

// New validates the options, connects to the broker within the dial
// timeout and returns the transport. Errors wrap ErrInvalidConfig,
// ErrUnreachable (naming the transport and address) or ErrAuth. New does not
// retry: an unreachable broker fails at once, and the caller decides
// whether to retry start-up. Once connected, the clients reconnect on their
// own (see docs/TRANSPORTS.md).
func New(ctx context.Context, opts ...Option) (*Transport, error) {
	o := newOptions(opts)
	if len(o.errs) > 0 {
		return nil, fmt.Errorf("levee/adapters: %w", errors.Join(o.errs...))
	}
	if err := o.tc.validate(); err != nil {
		return nil, o.tc.redactError(fmt.Errorf("levee/adapters: %w", err))
	}
	var (
		p   *transport.Parts
		err error
	)
	tc, s := o.tc, o.tc.settings(o.logger)
	switch tc.kind() {
	case KindGoChannel:
		p, err = gochannel.New(deref(tc.GoChannel), s)
	case KindAMQP:
		p, err = amqp.New(ctx, *tc.AMQP, s)
	case KindKafka:
		p, err = kafka.New(ctx, *tc.Kafka, s)
	case KindNATS:
		p, err = nats.New(ctx, *tc.NATS, s)
	case KindRedis:
		p, err = redis.New(ctx, *tc.Redis, s)
	case KindPostgres:
		p, err = postgres.New(ctx, *tc.Postgres, s)
	}
	if err != nil {
		return nil, tc.redactError(err)
	}
	return &Transport{
		Publisher:    egressPublisher{p.Publisher},
		Subscriber:   p.Subscriber,
		Capabilities: p.Capabilities,
		parts:        p,
	}, nil
}

// DeleteTopics deletes what the transport created on the broker for the
// topics, with the messages in them: RabbitMQ queues (and a consumer
// group's exchanges), JetStream streams, Redis streams (with their
// consumer groups), PostgreSQL tables, Kafka topics. What does not exist
// is skipped; GoChannel keeps nothing outside the process. Call it before
// Close, once nothing consumes the topics: a demo or a test cleaning up
// what it created. Errors name the topic.
func (t *Transport) DeleteTopics(ctx context.Context, topics ...string) error {
	if t.parts.DeleteTopics == nil || len(topics) == 0 {
		return nil
	}
	return t.parts.DeleteTopics(ctx, topics)
}

// CheckTopic returns an error when the transport cannot carry topic: a
// PostgreSQL topic longer than postgres.MaxTopicLen (its table name would
// be cut, ErrTopicTooLong). Publish and Subscribe refuse such a topic too;
// CheckTopic lets a service refuse it at start, before a dead letter
// meets it. Every other transport takes every topic.
func (t *Transport) CheckTopic(topic string) error {
	if t.parts.CheckTopic == nil {
		return nil
	}
	return t.parts.CheckTopic(topic)
}

// Close closes the subscriber, the publisher and the connections, in that
// order. Unacknowledged messages are redelivered by the broker later.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.parts.Close() })
	return t.closeErr
}

// retryAfter is the shared contract of an error asking for delayed redelivery.
type retryAfter interface{ RetryAfter() time.Duration }

// Middleware records a handler error's RetryAfter() delay in the message
// metadata (MetadataRetryAfter) before the router Nacks the message, so a
// transport with native delayed redelivery (Capabilities.NativeDelay)
// redelivers after that delay. On other transports it only records the
// key; the Nack redelivers as the transport always does. Install it as the
// outermost router middleware (router.AddMiddleware(t.Middleware)) so it
// sees the final error. It allocates only on the error path.
func (t *Transport) Middleware(next message.HandlerFunc) message.HandlerFunc {
	return RetryAfterMiddleware(next)
}

// RetryAfterMiddleware is (*Transport).Middleware without a transport.
func RetryAfterMiddleware(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := next(msg)
		if err != nil {
			// Only the final error decides the delay: whatever the key
			// held before (a handler, a producer) is replaced.
			delete(msg.Metadata, MetadataRetryAfter)
			var ra retryAfter
			if errors.As(err, &ra) {
				if d := min(ra.RetryAfter(), levee.MaxRetryAfter); d > 0 {
					if msg.Metadata == nil { // a subscriber of the user's own may hand one over
						msg.Metadata = message.Metadata{}
					}
					msg.Metadata.Set(MetadataRetryAfter, d.String())
				}
			}
		}
		return out, err
	}
}
