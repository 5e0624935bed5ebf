package adapters

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	amqpDeliveryCountHeader = "x-delivery-count"
	wamqpUUIDHeader         = wamqp.DefaultMessageUUIDHeaderKey
)

// rabbitMQConsumerTimeout is RabbitMQ's default consumer_timeout (30 min):
// a delivery left unacknowledged longer closes the channel and is requeued.
const rabbitMQConsumerTimeout = 30 * time.Minute

func buildAMQP(ctx context.Context, o *options) (*built, error) {
	tc := o.tc
	uri := tc.AMQP.URL
	addr := hostPort(uri, "5672")
	if err := probe(ctx, KindAMQP, addr, tc.dialTimeout()); err != nil {
		return nil, err
	}
	n := tc.concurrency()
	maxPrio := tc.amqpMaxPriority()
	quorum := tc.AMQP.QueueType == amqpQueueTypeQuorum

	var cfg wamqp.Config
	if tc.ConsumerGroup == "" {
		cfg = wamqp.NewDurableQueueConfig(uri)
	} else {
		cfg = wamqp.NewDurablePubSubConfig(uri, wamqp.GenerateQueueNameTopicNameWithSuffix(tc.ConsumerGroup))
	}
	amqpCfg := amqp.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
	}
	cfg.Marshaler = amqpMarshaler{maxPriority: maxPrio, quorum: quorum}
	args := amqp.Table{}
	if maxPrio > 0 {
		args["x-max-priority"] = int32(maxPrio)
	}
	if quorum {
		args["x-queue-type"] = amqpQueueTypeQuorum
	}
	if len(args) > 0 {
		cfg.Queue.Arguments = args
	}
	// One unacknowledged delivery per consumer: N consumers give exactly
	// N in flight, and priority ordering is not defeated by prefetch.
	cfg.Consume.Qos.PrefetchCount = 1

	conn, err := dialAMQP(uri, amqpCfg, tc.dialTimeout(), o.logger)
	if err != nil {
		return nil, amqpConnectError(addr, err)
	}
	consumer := newAMQPConsumer(conn, cfg, tc.dialTimeout(), o.logger)
	subs := make([]message.Subscriber, n)
	for i := range subs {
		subs[i] = consumer
	}
	fan, err := NewFanIn(subs...)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	fan.trustCount = true // the marshaler sets it from the broker, or drops it
	return &built{
		pub:     newAMQPPublisher(conn, cfg, max(4, n), tc.dialTimeout(), o.logger, maxPrio, quorum),
		sub:     amqpSubscriber{FanIn: fan, maxPriority: maxPrio, quorum: quorum},
		caps:    o.tc.Capabilities(),
		closers: []func() error{conn.Close},
	}, nil
}

func amqpConnectError(addr string, err error) error {
	var aerr *amqp.Error
	if errors.Is(err, amqp.ErrVhost) || (errors.As(err, &aerr) && strings.Contains(aerr.Reason, "vhost")) {
		return fmt.Errorf("%w: amqp at %s: %v (the vhost in transport.amqp.url does not exist or the user has no access to it)", ErrAuth, addr, err)
	}
	if errors.Is(err, amqp.ErrCredentials) || errors.Is(err, amqp.ErrSASL) ||
		(errors.As(err, &aerr) && aerr.Code == amqp.AccessRefused) {
		return fmt.Errorf("%w: amqp at %s: %v (check the user and password in transport.amqp.url)", ErrAuth, addr, err)
	}
	return unreachable(KindAMQP, addr, err)
}

// amqpTopologyError turns a PRECONDITION_FAILED from a queue declaration
// into ErrTopologyMismatch saying what Levee declared and what differs.
func amqpTopologyError(topic string, maxPrio int, quorum bool, err error) error {
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.PreconditionFailed {
		declared := "durable classic queue"
		if quorum {
			declared = "durable quorum queue"
		}
		if maxPrio > 0 {
			declared += fmt.Sprintf(" with x-max-priority=%d", maxPrio)
		} else if !quorum {
			declared += " without x-max-priority"
		}
		return fmt.Errorf("%w: amqp topic %q: Levee declares a %s but the broker says: %s "+
			"(delete the queue, or set transport.amqp.max_priority/queue_type to match the existing one)",
			ErrTopologyMismatch, topic, declared, aerr.Reason)
	}
	return err
}

type amqpSubscriber struct {
	*FanIn
	maxPriority int
	quorum      bool
}

func (s amqpSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ch, err := s.FanIn.Subscribe(ctx, topic)
	if err != nil {
		return nil, amqpTopologyError(topic, s.maxPriority, s.quorum, err)
	}
	return ch, nil
}

// amqpMarshaler is watermill-amqp's DefaultMarshaler plus: levee_priority
// becomes the publishing priority; non-string headers (x-delivery-count,
// x-death) no longer fail unmarshalling; x-delivery-count becomes
// levee_delivery_count.
type amqpMarshaler struct {
	base        wamqp.DefaultMarshaler
	maxPriority int
	quorum      bool
}

func (m amqpMarshaler) Marshal(msg *message.Message) (amqp.Publishing, error) {
	p, err := m.base.Marshal(msg)
	if err != nil {
		return p, err
	}
	if m.maxPriority > 0 {
		p.Priority = priorityOf(msg, m.maxPriority)
	}
	return p, nil
}

// priorityOf parses levee_priority defensively, clamped to 0..max.
func priorityOf(msg *message.Message, maxPrio int) uint8 {
	v := msg.Metadata.Get(MetadataPriority)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0
	}
	if n > maxPrio {
		n = maxPrio
	}
	return uint8(n)
}

func (m amqpMarshaler) Unmarshal(d amqp.Delivery) (*message.Message, error) {
	var count int64 = -1
	clean := true
	for k, v := range d.Headers {
		if _, ok := v.(string); !ok {
			clean = false
		}
		if k == amqpDeliveryCountHeader {
			switch c := v.(type) {
			case int64:
				count = c
			case int32:
				count = int64(c)
			case int:
				count = int64(c)
			}
		}
	}
	if !clean {
		h := make(amqp.Table, len(d.Headers))
		for k, v := range d.Headers {
			if s, ok := v.(string); ok {
				h[k] = s
			} else if k != amqpDeliveryCountHeader {
				h[k] = fmt.Sprint(v)
			}
		}
		d.Headers = h
	}
	msg, err := m.base.Unmarshal(d)
	if err != nil {
		return nil, err
	}
	// A producer's levee_delivery_count never survives: the count comes
	// from the broker (quorum queues) or is absent.
	delete(msg.Metadata, MetadataDeliveryCount)
	if count >= 0 {
		msg.Metadata.Set(MetadataDeliveryCount, strconv.FormatInt(count+1, 10))
	} else if m.quorum {
		// Quorum queues add x-delivery-count from the first redelivery on.
		msg.Metadata.Set(MetadataDeliveryCount, "1")
	}
	return msg, nil
}
