package adapters

import (
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/levee-dev/levee/adapters/internal/kit"
)

// Option configures New.
type Option interface{ apply(*options) }

type options struct {
	tc     TransportConfig
	logger watermill.LoggerAdapter
	// errs are options given a zero that the section's YAML rejects too
	// (TransportConfig's nonzero keys): New returns them.
	errs []error
}

// zero records an option given an explicit zero: like the YAML key, it
// must be left out for the default, never silently replaced by it.
func (o *options) zero(key, def string) {
	o.errs = append(o.errs, kit.Invalid(key, "0 is not allowed: leave the option out for the default (%s)", def))
}

func newOptions(opts []Option) *options {
	o := &options{logger: watermill.NopLogger{}}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(o)
		}
	}
	return o
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithGoChannel selects the in-process GoChannel transport (the default).
func WithGoChannel() Option {
	return optionFunc(func(o *options) { o.tc.Kind = KindGoChannel })
}

// WithGoChannelPersistent makes the GoChannel transport keep every message
// and replay it to new subscriptions (default false).
func WithGoChannelPersistent(persistent bool) Option {
	return optionFunc(func(o *options) {
		o.tc.Kind = KindGoChannel
		o.tc.GoChannel = &GoChannelConfig{Persistent: persistent}
	})
}

// WithAMQP selects RabbitMQ at url (amqp://user:pass@host:5672/).
func WithAMQP(url string) Option {
	return optionFunc(func(o *options) {
		o.tc.Kind = KindAMQP
		if o.tc.AMQP == nil {
			o.tc.AMQP = &AMQPConfig{}
		}
		o.tc.AMQP.URL = url
	})
}

// WithAMQPMaxPriority sets the x-max-priority declared on AMQP queues
// (default none, as plain watermill-amqp declares them; 10 covers
// levee_priority 0..9). Applies after WithAMQP.
func WithAMQPMaxPriority(n int) Option {
	return optionFunc(func(o *options) {
		if o.tc.AMQP == nil {
			o.tc.AMQP = &AMQPConfig{}
		}
		o.tc.AMQP.MaxPriority = &n
	})
}

// WithAMQPQueueType sets the AMQP queue type: "classic" (default) or "quorum".
func WithAMQPQueueType(t string) Option {
	return optionFunc(func(o *options) {
		if o.tc.AMQP == nil {
			o.tc.AMQP = &AMQPConfig{}
		}
		o.tc.AMQP.QueueType = t
	})
}

// WithKafka selects Kafka with the given seed brokers (host:port).
func WithKafka(brokers ...string) Option {
	return optionFunc(func(o *options) {
		o.tc.Kind = KindKafka
		if o.tc.Kafka == nil {
			o.tc.Kafka = &KafkaConfig{}
		}
		o.tc.Kafka.Brokers = append([]string(nil), brokers...)
	})
}

// WithKafkaPartitions sets the partition count of topics Levee creates
// (default: the concurrency; must not be below it).
func WithKafkaPartitions(n int) Option {
	return optionFunc(func(o *options) {
		if o.tc.Kafka == nil {
			o.tc.Kafka = &KafkaConfig{}
		}
		o.tc.Kafka.Partitions = n
	})
}

// WithNATS selects NATS JetStream at url (nats://host:4222).
func WithNATS(url string) Option {
	return optionFunc(func(o *options) {
		o.tc.Kind = KindNATS
		o.tc.NATS = &NATSConfig{URL: url}
	})
}

// WithRedis selects Redis Streams at addr (host:port).
func WithRedis(addr string) Option {
	return optionFunc(func(o *options) {
		o.tc.Kind = KindRedis
		if o.tc.Redis == nil {
			o.tc.Redis = &RedisConfig{}
		}
		o.tc.Redis.Addr = addr
	})
}

// WithRedisAuth sets the Redis username (empty for requirepass) and password.
func WithRedisAuth(username, password string) Option {
	return optionFunc(func(o *options) {
		if o.tc.Redis == nil {
			o.tc.Redis = &RedisConfig{}
		}
		o.tc.Redis.Username, o.tc.Redis.Password = username, password
	})
}

// WithRedisDB selects the Redis database number (default 0).
func WithRedisDB(db int) Option {
	return optionFunc(func(o *options) {
		if o.tc.Redis == nil {
			o.tc.Redis = &RedisConfig{}
		}
		o.tc.Redis.DB = db
	})
}

// WithPostgres selects PostgreSQL (watermill-sql v4, queue schema) at url.
func WithPostgres(url string) Option {
	return optionFunc(func(o *options) {
		o.tc.Kind = KindPostgres
		if o.tc.Postgres == nil {
			o.tc.Postgres = &PostgresConfig{}
		}
		o.tc.Postgres.URL = url
	})
}

// WithPostgresPollInterval sets the wait between polls of an empty table
// (default 100ms).
func WithPostgresPollInterval(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if o.tc.Postgres == nil {
			o.tc.Postgres = &PostgresConfig{}
		}
		o.tc.Postgres.PollInterval = d
	})
}

// WithPostgresMaxConns caps the PostgreSQL transport's connections
// (default 8 × concurrency + 4; every in-flight message holds one, and
// the publisher keeps up to postgres.PublishConns of its own).
func WithPostgresMaxConns(n int) Option {
	return optionFunc(func(o *options) {
		if o.tc.Postgres == nil {
			o.tc.Postgres = &PostgresConfig{}
		}
		o.tc.Postgres.MaxConns = n
	})
}

// WithPostgresDeleteOnAck deletes a PostgreSQL row when its message is
// acked instead of marking it acked (PostgresConfig.DeleteOnAck).
func WithPostgresDeleteOnAck(on bool) Option {
	return optionFunc(func(o *options) {
		if o.tc.Postgres == nil {
			o.tc.Postgres = &PostgresConfig{}
		}
		o.tc.Postgres.DeleteOnAck = on
	})
}

// WithConcurrency sets the messages in flight per subscribed topic
// (default 1, at most 1024). Zero is an error (New), as in YAML.
func WithConcurrency(n int) Option {
	return optionFunc(func(o *options) {
		if n == 0 {
			o.zero("concurrency", "1")
		}
		o.tc.Concurrency = n
	})
}

// WithConsumerGroup names the competing-consumer group (default "levee").
func WithConsumerGroup(group string) Option {
	return optionFunc(func(o *options) { o.tc.ConsumerGroup = group })
}

// WithAckDeadline sets how long a message may stay unacknowledged before
// redelivery, where the transport has such a deadline (default 30s; on
// amqp it declares RabbitMQ's consumer timeout, default 30m; kafka and
// gochannel have none and New rejects it). Zero is an error, as in YAML.
func WithAckDeadline(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d == 0 {
			o.zero("ack_deadline", "30s")
		}
		o.tc.AckDeadline = d
	})
}

// WithDialTimeout bounds the connection attempt made by New (default 5s).
// Zero is an error, as in YAML.
func WithDialTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d == 0 {
			o.zero("dial_timeout", "5s")
		}
		o.tc.DialTimeout = d
	})
}

// WithLogger sets the Watermill logger handed to the transport (default: none).
func WithLogger(l watermill.LoggerAdapter) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// Options returns the options that make New build the transport this
// section describes.
func (c TransportConfig) Options() []Option {
	var opts []Option
	switch c.Kind {
	case "":
	case KindGoChannel:
		opts = append(opts, WithGoChannel())
	default:
		// Unknown or sectioned kinds: carry the kind so New's validation
		// reports exactly what Validate reports.
		kind := c.Kind
		opts = append(opts, optionFunc(func(o *options) { o.tc.Kind = kind }))
	}
	if c.GoChannel != nil {
		g := *c.GoChannel
		opts = append(opts, optionFunc(func(o *options) { o.tc.GoChannel = &g }))
	}
	if c.AMQP != nil {
		a := *c.AMQP
		if a.MaxPriority != nil {
			p := *a.MaxPriority
			a.MaxPriority = &p
		}
		opts = append(opts, optionFunc(func(o *options) { o.tc.AMQP = &a }))
	}
	if c.Kafka != nil {
		k := KafkaConfig{Brokers: append([]string(nil), c.Kafka.Brokers...), Partitions: c.Kafka.Partitions}
		opts = append(opts, optionFunc(func(o *options) { o.tc.Kafka = &k }))
	}
	if c.NATS != nil {
		n := *c.NATS
		opts = append(opts, optionFunc(func(o *options) { o.tc.NATS = &n }))
	}
	if c.Redis != nil {
		r := *c.Redis
		opts = append(opts, optionFunc(func(o *options) { o.tc.Redis = &r }))
	}
	if c.Postgres != nil {
		p := *c.Postgres
		opts = append(opts, optionFunc(func(o *options) { o.tc.Postgres = &p }))
	}
	if c.Concurrency != 0 {
		opts = append(opts, WithConcurrency(c.Concurrency))
	}
	if c.ConsumerGroup != "" {
		opts = append(opts, WithConsumerGroup(c.ConsumerGroup))
	}
	if c.AckDeadline != 0 {
		opts = append(opts, WithAckDeadline(c.AckDeadline))
	}
	if c.DialTimeout != 0 {
		opts = append(opts, WithDialTimeout(c.DialTimeout))
	}
	return opts
}
