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
	MetadataPriority = "levee_priority"
	// MetadataPartitionKey is the Kafka record key: messages with the same
	// key go to one partition and keep their order. Without it records are
	// spread round-robin over the partitions.
	MetadataPartitionKey = "levee_partition_key"
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

// stripControl deletes the control keys a producer must not set from md,
// at ingress: all of them, or all but the delivery count when keepCount
// (the adapter set it from the broker).
func stripControl(md message.Metadata, keepCount bool) {
	if !keepCount {
		levee.StripControl(md)
		return
	}
	delete(md, MetadataRetryAfter)
	delete(md, MetadataRedeliverAt)
}

// egressPublisher is the publisher a Transport hands out: a message that
// carries a control key (typically a consumed message forwarded as is) is
// published as a copy without it, so a control key never leaves the
// process on a publish; the caller's message is left unchanged.
type egressPublisher struct{ message.Publisher }

func (p egressPublisher) Publish(topic string, msgs ...*message.Message) error {
	copied := false
	for i, m := range msgs {
		if m == nil || !levee.HasControl(m.Metadata) {
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
		levee.StripControl(c.Metadata)
		c.SetContext(m.Context())
		msgs[i] = c
	}
	return p.Publisher.Publish(topic, msgs...)
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

// Capabilities returns what the transport this section describes can do,
// without connecting to it (New reports the same value in
// Transport.Capabilities). An invalid section gives the zero value.
func (c TransportConfig) Capabilities() Capabilities {
	if c.validate() != nil {
		return Capabilities{}
	}
	n := c.concurrency()
	switch c.kind() {
	case KindAMQP:
		return Capabilities{
			Kind:           KindAMQP,
			System:         "rabbitmq",
			MaxInFlight:    n,
			AckDeadline:    rabbitMQConsumerTimeout,
			NativePriority: c.amqpMaxPriority() > 0,
			DeliveryCount:  c.AMQP.QueueType == amqpQueueTypeQuorum,
		}
	case KindKafka:
		return Capabilities{
			Kind:          KindKafka,
			System:        "kafka",
			MaxInFlight:   min(n, c.kafkaPartitions()),
			OrderedPerKey: true,
		}
	case KindNATS:
		return Capabilities{
			Kind:          KindNATS,
			System:        "nats",
			MaxInFlight:   n,
			AckDeadline:   c.ackDeadline(),
			NativeDelay:   true,
			DeliveryCount: true,
		}
	case KindRedis:
		return Capabilities{Kind: KindRedis, System: "redis", MaxInFlight: n, AckDeadline: c.ackDeadline()}
	case KindPostgres:
		return Capabilities{Kind: KindPostgres, System: "postgresql", MaxInFlight: n, AckDeadline: c.ackDeadline(), NativeDelay: true}
	default:
		return Capabilities{Kind: KindGoChannel, System: "gochannel", MaxInFlight: n}
	}
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

	closers   []func() error
	closeOnce sync.Once
	closeErr  error
}

type built struct {
	pub     message.Publisher
	sub     message.Subscriber
	caps    Capabilities
	closers []func() error // run after pub and sub are closed, in order
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
	if err := o.tc.validate(); err != nil {
		return nil, o.tc.redactError(fmt.Errorf("transport: %w", err))
	}
	var (
		b   *built
		err error
	)
	switch o.tc.kind() {
	case KindGoChannel:
		b, err = buildGoChannel(o)
	case KindAMQP:
		b, err = buildAMQP(ctx, o)
	case KindKafka:
		b, err = buildKafka(ctx, o)
	case KindNATS:
		b, err = buildNATS(ctx, o)
	case KindRedis:
		b, err = buildRedis(ctx, o)
	case KindPostgres:
		b, err = buildPostgres(ctx, o)
	}
	if err != nil {
		return nil, o.tc.redactError(err)
	}
	t := &Transport{Publisher: egressPublisher{b.pub}, Subscriber: b.sub, Capabilities: b.caps}
	t.closers = append([]func() error{b.sub.Close, b.pub.Close}, b.closers...)
	return t, nil
}

// Close closes the subscriber, the publisher and the connections, in that
// order. Unacknowledged messages are redelivered by the broker later.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		var errs []error
		for _, c := range t.closers {
			if err := c(); err != nil {
				errs = append(errs, err)
			}
		}
		t.closeErr = errors.Join(errs...)
	})
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
					msg.Metadata.Set(MetadataRetryAfter, d.String())
				}
			}
		}
		return out, err
	}
}

// retryAfterOf reads MetadataRetryAfter; garbage or non-positive means
// none, and a longer delay than levee.MaxRetryAfter is cut to it.
func retryAfterOf(msg *message.Message) time.Duration {
	v := msg.Metadata.Get(MetadataRetryAfter)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0
	}
	return min(d, levee.MaxRetryAfter)
}
