package amqp

import (
	"errors"
	"time"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/transport"
)

// Kind is the transport kind in the `transport` section.
const Kind = "amqp"

// MetadataPriority is the message priority (integer, higher first), the
// root vocabulary's levee.KeyPriority. The publisher maps it onto the
// publishing priority, clamped to 0..max_priority; a missing or garbage
// value means priority 0.
const MetadataPriority = levee.KeyPriority

// DefaultMaxPriority is the x-max-priority declared on classic queues when
// Config.MaxPriority is nil: none. Queues are then declared as plain
// watermill-amqp declares them, so a service's existing queues just work
// (RabbitMQ refuses to redeclare a queue with other arguments). Set
// max_priority (10 covers levee_priority's 0..9) for native priority on
// new queues.
const DefaultMaxPriority = 0

const (
	maxPriority      = 255
	queueTypeClassic = "classic"
	queueTypeQuorum  = "quorum"
)

// consumerTimeout is RabbitMQ's default consumer_timeout (30 min): a
// delivery left unacknowledged longer closes the channel and is requeued.
const consumerTimeout = 30 * time.Minute

// Config is the `transport.amqp` section (RabbitMQ, watermill-amqp v3).
type Config struct {
	// URL is the AMQP URI, e.g. amqp://guest:guest@127.0.0.1:5672/. Required.
	URL string `yaml:"url"`
	// MaxPriority is the queues' x-max-priority (1..255). Nil or 0
	// declares queues without priority (DefaultMaxPriority), as plain
	// watermill-amqp does. Must be unset or 0 for quorum queues.
	MaxPriority *int `yaml:"max_priority"`
	// QueueType is "classic" (default) or "quorum". Quorum queues report a
	// delivery count (x-delivery-count) but no native priority.
	QueueType string `yaml:"queue_type"`
}

// Validate checks the section. Errors wrap transport.ErrInvalidConfig and
// name the key (amqp.url, ...).
func (c Config) Validate(transport.Settings) error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, kit.Invalid("amqp.url", "kind amqp needs a url (amqp://user:pass@host:5672/)"))
	} else if err := kit.CheckURL(c.URL, "amqp", "amqps"); err != nil {
		errs = append(errs, kit.Invalid("amqp.url", "%v", err))
	}
	switch c.QueueType {
	case "", queueTypeClassic, queueTypeQuorum:
	default:
		errs = append(errs, kit.Invalid("amqp.queue_type", "unknown queue type %q (want classic or quorum)", c.QueueType))
	}
	if c.MaxPriority != nil {
		p := *c.MaxPriority
		switch {
		case p < 0 || p > maxPriority:
			errs = append(errs, kit.Invalid("amqp.max_priority", "%d out of range (0..%d; 0 disables priority)", p, maxPriority))
		case p > 0 && c.QueueType == queueTypeQuorum:
			errs = append(errs, kit.Invalid("amqp.max_priority", "quorum queues do not take x-max-priority; leave it unset or 0"))
		}
	}
	return errors.Join(errs...)
}

func (c Config) quorum() bool { return c.QueueType == queueTypeQuorum }

// maxPriorityOrDefault is the x-max-priority declared: none on quorum
// queues, 10 when unset.
func (c Config) maxPriorityOrDefault() int {
	if c.quorum() {
		return 0
	}
	if c.MaxPriority == nil {
		return DefaultMaxPriority
	}
	return *c.MaxPriority
}

// Capabilities returns what the transport does with settings s: native
// priority on classic queues with x-max-priority, a delivery count on
// quorum queues, and RabbitMQ's consumer timeout as the ack deadline: the
// configured ack_deadline when set (the operator declares the server's
// consumer_timeout), else RabbitMQ's default, 30m.
func (c Config) Capabilities(s transport.Settings) transport.Capabilities {
	deadline := consumerTimeout
	if s.AckDeadlineSet && s.AckDeadline > 0 {
		deadline = s.AckDeadline
	}
	return transport.Capabilities{
		Kind:           Kind,
		System:         "rabbitmq",
		MaxInFlight:    s.WithDefaults().Concurrency,
		AckDeadline:    deadline,
		NativePriority: c.maxPriorityOrDefault() > 0,
		DeliveryCount:  c.quorum(),
	}
}
