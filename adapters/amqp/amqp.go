// Package amqp is Levee's RabbitMQ transport: amqp091-go on a connection
// that Levee keeps and redials after a broker restart, with watermill-amqp
// v3's configuration, topology and wire format, so it interoperates with
// plain watermill-amqp services. Concurrency N runs N consumers with
// prefetch 1 on a topic's queue; levee_priority maps onto x-max-priority;
// quorum queues report a delivery count.
//
// The adapters facade builds it from `transport: {kind: amqp, amqp: {...}}`.
// The publisher and the subscriber New returns are safe for concurrent
// use; their Close is idempotent.
package amqp

import (
	"context"
	"errors"
	"fmt"
	"time"

	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/levee-dev/levee/adapters/internal/fanin"
	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/redact"
)

// New validates c, probes the broker within the dial timeout, connects and
// returns the transport. Errors wrap transport.ErrInvalidConfig,
// ErrUnreachable (naming the address) or ErrAuth; none quotes the URL's
// password. New does not retry; once connected, the connection redials on
// its own after a loss.
func New(ctx context.Context, c Config, s transport.Settings) (*transport.Parts, error) {
	s = s.WithDefaults()
	if err := c.Validate(s); err != nil {
		return nil, err
	}
	p, err := build(ctx, c, s)
	return p, redact.Error(err, c.URL)
}

func build(ctx context.Context, c Config, s transport.Settings) (*transport.Parts, error) {
	uri := c.URL
	addr := kit.HostPort(uri, "5672")
	if err := kit.Probe(ctx, Kind, addr, s.DialTimeout); err != nil {
		return nil, err
	}
	n := s.Concurrency
	maxPrio := c.maxPriorityOrDefault()
	quorum := c.quorum()

	var cfg wamqp.Config
	if s.ConsumerGroup == "" {
		cfg = wamqp.NewDurableQueueConfig(uri)
	} else {
		cfg = wamqp.NewDurablePubSubConfig(uri, wamqp.GenerateQueueNameTopicNameWithSuffix(s.ConsumerGroup))
	}
	amqpCfg := amqp.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
	}
	cfg.Marshaler = Marshaler{MaxPriority: maxPrio, Quorum: quorum}
	args := amqp.Table{}
	if maxPrio > 0 {
		args["x-max-priority"] = int32(maxPrio)
	}
	if quorum {
		args["x-queue-type"] = queueTypeQuorum
	}
	if len(args) > 0 {
		cfg.Queue.Arguments = args
	}
	// One unacknowledged delivery per consumer: N consumers give exactly
	// N in flight, and priority ordering is not defeated by prefetch.
	cfg.Consume.Qos.PrefetchCount = 1

	conn, err := connect(uri, amqpCfg, s.DialTimeout, s.Logger)
	if err != nil {
		return nil, connectError(addr, err)
	}
	cons := newConsumer(conn, cfg, s.DialTimeout, s.Logger)
	subs := make([]message.Subscriber, n)
	for i := range subs {
		subs[i] = cons
	}
	// The marshaler sets the delivery count from the broker, or drops it.
	fan, err := fanin.NewTrusted(subs...)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &transport.Parts{
		Publisher:    newPublisher(conn, cfg, max(4, n), s.DialTimeout, s.Logger, maxPrio, quorum),
		Subscriber:   subscriber{FanIn: fan, maxPriority: maxPrio, quorum: quorum},
		Capabilities: c.Capabilities(s),
		Closers:      []func() error{conn.Close},
		DeleteTopics: deleteTopics(conn, cfg, s.DialTimeout),
	}, nil
}

func connectError(addr string, err error) error {
	var aerr *amqp.Error
	// amqp091 returns ErrVhost when connection.open fails; a broker that
	// closes the connection with 530 NOT_ALLOWED refuses the vhost too.
	if errors.Is(err, amqp.ErrVhost) || (errors.As(err, &aerr) && aerr.Code == amqp.NotAllowed) {
		return fmt.Errorf("%w: amqp at %s: %v (the vhost in transport.amqp.url does not exist or the user has no access to it)", transport.ErrAuth, addr, err)
	}
	if errors.Is(err, amqp.ErrCredentials) || errors.Is(err, amqp.ErrSASL) ||
		(errors.As(err, &aerr) && aerr.Code == amqp.AccessRefused) {
		return fmt.Errorf("%w: amqp at %s: %v (check the user and password in transport.amqp.url)", transport.ErrAuth, addr, err)
	}
	return kit.Unreachable(Kind, addr, err)
}

// topologyError turns a PRECONDITION_FAILED from a queue declaration
// into transport.ErrTopologyMismatch saying what Levee declared and what differs.
func topologyError(topic string, maxPrio int, quorum bool, err error) error {
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
			transport.ErrTopologyMismatch, topic, declared, aerr.Reason)
	}
	return err
}

type subscriber struct {
	*fanin.FanIn
	maxPriority int
	quorum      bool
}

func (s subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ch, err := s.FanIn.Subscribe(ctx, topic)
	if err != nil {
		return nil, topologyError(topic, s.maxPriority, s.quorum, err)
	}
	return ch, nil
}
