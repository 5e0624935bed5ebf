package adapters

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/levee-dev/levee/adapters/amqp"
	"github.com/levee-dev/levee/adapters/gochannel"
	"github.com/levee-dev/levee/adapters/internal/kit"
	"github.com/levee-dev/levee/adapters/kafka"
	"github.com/levee-dev/levee/adapters/nats"
	"github.com/levee-dev/levee/adapters/postgres"
	"github.com/levee-dev/levee/adapters/redis"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/redact"
)

// Transport kinds accepted in TransportConfig.Kind.
const (
	KindGoChannel = gochannel.Kind
	KindAMQP      = amqp.Kind
	KindKafka     = kafka.Kind
	KindNATS      = nats.Kind
	KindRedis     = redis.Kind
	KindPostgres  = postgres.Kind
)

// Kinds lists every accepted transport kind, in documentation order.
func Kinds() []string {
	return []string{KindGoChannel, KindAMQP, KindKafka, KindNATS, KindRedis, KindPostgres}
}

// MinAckDeadline is the least ack_deadline: shorter, the holds bounded by
// it (80% of it in adapters/service) round to nothing.
const MinAckDeadline = time.Second

// Defaults applied when a field is zero.
const (
	DefaultConcurrency   = transport.DefaultConcurrency
	DefaultAckDeadline   = transport.DefaultAckDeadline
	DefaultDialTimeout   = transport.DefaultDialTimeout
	DefaultConsumerGroup = transport.DefaultConsumerGroup
	DefaultAMQPPriority  = amqp.DefaultMaxPriority
	DefaultPollInterval  = postgres.DefaultPollInterval
	maxConcurrency       = 1024
)

// The per-transport sections, defined by their transport packages.
type (
	// GoChannelConfig is the `transport.gochannel` section: gochannel.Config.
	GoChannelConfig = gochannel.Config
	// AMQPConfig is the `transport.amqp` section: amqp.Config.
	AMQPConfig = amqp.Config
	// KafkaConfig is the `transport.kafka` section: kafka.Config.
	KafkaConfig = kafka.Config
	// NATSConfig is the `transport.nats` section: nats.Config.
	NATSConfig = nats.Config
	// RedisConfig is the `transport.redis` section: redis.Config.
	RedisConfig = redis.Config
	// PostgresConfig is the `transport.postgres` section: postgres.Config.
	PostgresConfig = postgres.Config
)

// TransportConfig is the YAML `transport` section:
//
//	transport:
//	  kind: amqp               # gochannel (default), amqp, kafka, nats, redis, postgres
//	  concurrency: 8           # messages in flight per subscribed topic (default 1)
//	  consumer_group: billing  # competing-consumer group (default "levee")
//	  ack_deadline: 30s        # JetStream AckWait, SQL AckDeadline, Redis claim idle time, RabbitMQ consumer_timeout
//	  dial_timeout: 5s         # how long Build waits for the broker
//	  amqp: {url: "amqp://guest:guest@127.0.0.1:5672/", max_priority: 10, queue_type: classic}  # max_priority: none unless set
//
// Only the sub-section of the chosen kind may be present; each is the
// Config of its transport package. The zero value is a GoChannel transport
// with concurrency 1.
type TransportConfig struct {
	// Kind selects the transport; empty means gochannel.
	Kind string `yaml:"kind"`
	// Concurrency is the number of messages in flight per subscribed topic
	// (competing consumers). Zero means 1; at most 1024.
	Concurrency int `yaml:"concurrency" levee:"nonzero"`
	// ConsumerGroup names the group of competing consumers. Empty means
	// "levee" (Kafka, NATS, Redis). On AMQP a group turns the topic into a
	// fanout exchange with one queue "<topic>_<group>" per group; without it
	// the topic is a queue on the default exchange. PostgreSQL (queue mode)
	// has no groups and rejects the key.
	ConsumerGroup string `yaml:"consumer_group"`
	// AckDeadline is how long a consumed message may stay unacknowledged
	// before the transport redelivers it (JetStream AckWait, SQL
	// AckDeadline, Redis Streams claim idle time). Absent means 30s; an
	// explicit 0, or anything under MinAckDeadline (1s), is an error. On amqp it declares the broker's
	// consumer_timeout (a server setting Levee cannot change; absent means
	// RabbitMQ's default, 30m). Kafka and gochannel have no deadline and
	// reject the key. It is reported in Capabilities so middlewares bound
	// their waits below it.
	AckDeadline time.Duration `yaml:"ack_deadline" levee:"nonzero"`
	// DialTimeout bounds the connection attempt made by Build. Zero means 5s.
	DialTimeout time.Duration `yaml:"dial_timeout" levee:"nonzero"`

	GoChannel *GoChannelConfig `yaml:"gochannel"`
	AMQP      *AMQPConfig      `yaml:"amqp"`
	Kafka     *KafkaConfig     `yaml:"kafka"`
	NATS      *NATSConfig      `yaml:"nats"`
	Redis     *RedisConfig     `yaml:"redis"`
	Postgres  *PostgresConfig  `yaml:"postgres"`
}

// Validate checks the section; the YAML loader calls it after decoding and
// New runs the same checks. Errors wrap ErrInvalidConfig and name the key.
func (c TransportConfig) Validate() error {
	return c.validate()
}

func (c TransportConfig) kind() string {
	if c.Kind == "" {
		return KindGoChannel
	}
	return c.Kind
}

// settings are the shared keys as the transport packages take them.
func (c TransportConfig) settings(logger watermill.LoggerAdapter) transport.Settings {
	return transport.Settings{
		Concurrency:    c.Concurrency,
		ConsumerGroup:  c.ConsumerGroup,
		AckDeadline:    c.AckDeadline,
		AckDeadlineSet: c.AckDeadline != 0,
		DialTimeout:    c.DialTimeout,
		Logger:         logger,
	}.WithDefaults()
}

// section is the chosen transport's sub-section, zero when absent.
type section interface {
	Validate(transport.Settings) error
	Capabilities(transport.Settings) transport.Capabilities
}

func (c TransportConfig) section() section {
	switch c.kind() {
	case KindAMQP:
		return deref(c.AMQP)
	case KindKafka:
		return deref(c.Kafka)
	case KindNATS:
		return deref(c.NATS)
	case KindRedis:
		return deref(c.Redis)
	case KindPostgres:
		return deref(c.Postgres)
	default:
		return deref(c.GoChannel)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (c TransportConfig) validate() error {
	// Every problem is reported, not the first (levee config check lists
	// them all at once).
	var errs []error
	kind := c.kind()
	known := slices.Contains(Kinds(), kind)
	if !known {
		errs = append(errs, kit.Invalid("kind", "unknown transport kind %q (want one of %s)", c.Kind, strings.Join(Kinds(), ", ")))
	}
	if c.Concurrency < 0 || c.Concurrency > maxConcurrency {
		errs = append(errs, kit.Invalid("concurrency", "%d out of range (1..%d; 0 means %d)", c.Concurrency, maxConcurrency, DefaultConcurrency))
	}
	switch {
	case c.AckDeadline != 0 && (kind == KindKafka || kind == KindGoChannel):
		errs = append(errs, kit.Invalid("ack_deadline", "kind %s has no ack deadline (a message is never redelivered for being slow); remove the key", kind))
	case c.AckDeadline < 0:
		errs = append(errs, kit.Invalid("ack_deadline", "must not be negative, got %s", c.AckDeadline))
	case c.AckDeadline > 0 && c.AckDeadline < MinAckDeadline:
		errs = append(errs, kit.Invalid("ack_deadline", "%s is under %s: the waits Levee bounds below it would round to nothing", c.AckDeadline, MinAckDeadline))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, kit.Invalid("dial_timeout", "must not be negative, got %s", c.DialTimeout))
	}
	sections := []struct {
		kind    string
		present bool
	}{
		{KindGoChannel, c.GoChannel != nil},
		{KindAMQP, c.AMQP != nil},
		{KindKafka, c.Kafka != nil},
		{KindNATS, c.NATS != nil},
		{KindRedis, c.Redis != nil},
		{KindPostgres, c.Postgres != nil},
	}
	mismatch := false
	for _, s := range sections {
		if s.present && s.kind != kind {
			mismatch = true
			errs = append(errs, kit.Invalid(s.kind, "section %q is set but kind is %q", s.kind, kind))
		}
	}
	if known && !mismatch {
		errs = append(errs, c.section().Validate(c.settings(nil)))
	}
	return errors.Join(errs...)
}

// redactError hides every credential of the section (URLs, broker
// addresses, the Redis password) from err's message: client libraries
// quote the URL they failed to parse or dial.
func (c TransportConfig) redactError(err error) error {
	var raws []string
	if c.AMQP != nil {
		raws = append(raws, c.AMQP.URL)
	}
	if c.NATS != nil {
		raws = append(raws, c.NATS.URL)
	}
	if c.Postgres != nil {
		raws = append(raws, c.Postgres.URL)
	}
	if c.Kafka != nil {
		raws = append(raws, c.Kafka.Brokers...)
	}
	err = redact.Error(err, raws...)
	if c.Redis != nil {
		err = redact.Values(redact.Error(err, c.Redis.Addr), c.Redis.Password)
	}
	return err
}
