package adapters

import (
	"fmt"
	"strings"
	"time"

	"github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/internal/redact"
)

// Transport kinds accepted in TransportConfig.Kind.
const (
	KindGoChannel = "gochannel"
	KindAMQP      = "amqp"
	KindKafka     = "kafka"
	KindNATS      = "nats"
	KindRedis     = "redis"
	KindPostgres  = "postgres"
)

// Kinds lists every accepted transport kind, in documentation order.
func Kinds() []string {
	return []string{KindGoChannel, KindAMQP, KindKafka, KindNATS, KindRedis, KindPostgres}
}

// Defaults applied when a field is zero.
const (
	DefaultConcurrency   = 1
	DefaultAckDeadline   = 30 * time.Second
	DefaultDialTimeout   = 5 * time.Second
	DefaultConsumerGroup = "levee"
	DefaultAMQPPriority  = 10
	DefaultPollInterval  = 100 * time.Millisecond
	maxConcurrency       = 1024
	maxAMQPPriority      = 255
	amqpQueueTypeClassic = "classic"
	amqpQueueTypeQuorum  = "quorum"
)

// TransportConfig is the YAML `transport` section:
//
//	transport:
//	  kind: amqp               # gochannel (default), amqp, kafka, nats, redis, postgres
//	  concurrency: 8           # messages in flight per subscribed topic (default 1)
//	  consumer_group: billing  # competing-consumer group (default "levee")
//	  ack_deadline: 30s        # JetStream AckWait, SQL AckDeadline, Redis claim idle time
//	  dial_timeout: 5s         # how long Build waits for the broker
//	  amqp: {url: "amqp://guest:guest@127.0.0.1:5672/", max_priority: 10, queue_type: classic}
//
// Only the sub-section of the chosen kind may be present. The zero value is
// a GoChannel transport with concurrency 1.
type TransportConfig struct {
	// Kind selects the transport; empty means gochannel.
	Kind string `yaml:"kind"`
	// Concurrency is the number of messages in flight per subscribed topic
	// (competing consumers). Zero means 1; at most 1024.
	Concurrency int `yaml:"concurrency"`
	// ConsumerGroup names the group of competing consumers. Empty means
	// "levee" (Kafka, NATS, Redis). On AMQP a group turns the topic into a
	// fanout exchange with one queue "<topic>_<group>" per group; without it
	// the topic is a queue on the default exchange. PostgreSQL (queue mode)
	// has no groups and rejects the key.
	ConsumerGroup string `yaml:"consumer_group"`
	// AckDeadline is how long a consumed message may stay unacknowledged
	// before the transport redelivers it (JetStream AckWait, SQL
	// AckDeadline, Redis Streams claim idle time). Zero means 30s. It is
	// reported in Capabilities so middlewares bound their waits below it.
	AckDeadline time.Duration `yaml:"ack_deadline"`
	// DialTimeout bounds the connection attempt made by Build. Zero means 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`

	GoChannel *GoChannelConfig `yaml:"gochannel"`
	AMQP      *AMQPConfig      `yaml:"amqp"`
	Kafka     *KafkaConfig     `yaml:"kafka"`
	NATS      *NATSConfig      `yaml:"nats"`
	Redis     *RedisConfig     `yaml:"redis"`
	Postgres  *PostgresConfig  `yaml:"postgres"`
}

// GoChannelConfig is the `transport.gochannel` section (in-process, no broker).
type GoChannelConfig struct {
	// Persistent keeps every published message in memory and replays them
	// to each new subscription (Watermill's GoChannel Persistent). Default
	// false: a message published with no subscriber is dropped by GoChannel.
	Persistent bool `yaml:"persistent"`
}

// AMQPConfig is the `transport.amqp` section (RabbitMQ, watermill-amqp v3).
type AMQPConfig struct {
	// URL is the AMQP URI, e.g. amqp://guest:guest@127.0.0.1:5672/. Required.
	URL string `yaml:"url"`
	// MaxPriority is the queues' x-max-priority (1..255). Nil means 10; 0
	// declares queues without priority. Ignored (must be unset or 0) for
	// quorum queues.
	MaxPriority *int `yaml:"max_priority"`
	// QueueType is "classic" (default) or "quorum". Quorum queues report a
	// delivery count (x-delivery-count) but no native priority.
	QueueType string `yaml:"queue_type"`
}

// KafkaConfig is the `transport.kafka` section (watermill-kafka v3).
type KafkaConfig struct {
	// Brokers lists host:port seed brokers. Required.
	Brokers []string `yaml:"brokers"`
	// Partitions is the partition count used when Levee creates a topic.
	// Zero means the transport concurrency; it must not be below it, since
	// a Kafka group runs one message per partition at a time.
	Partitions int `yaml:"partitions"`
}

// NATSConfig is the `transport.nats` section (NATS JetStream, watermill-nats v2).
type NATSConfig struct {
	// URL is the server URL, e.g. nats://127.0.0.1:4222. Required.
	URL string `yaml:"url"`
}

// RedisConfig is the `transport.redis` section (Redis Streams, watermill-redisstream).
type RedisConfig struct {
	// Addr is host:port. Required.
	Addr string `yaml:"addr"`
	// Username and Password authenticate (ACL or requirepass); empty means none.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DB is the database number (0..15 on a default server).
	DB int `yaml:"db"`
}

// PostgresConfig is the `transport.postgres` section (watermill-sql v4,
// queue schema: one table per topic, rows locked with SKIP LOCKED so
// several consumers work on different rows).
type PostgresConfig struct {
	// URL is a libpq connection string or URL, e.g.
	// postgres://postgres@127.0.0.1:5432/test. Required.
	URL string `yaml:"url"`
	// PollInterval is the wait between polls of an empty table. Zero means 100ms.
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxConns caps the connection pool. Every in-flight message holds one
	// connection until it is acked, so it should be at least concurrency ×
	// subscribed topics + 4. Zero means 8 × concurrency + 4.
	MaxConns int `yaml:"max_conns"`
	// DeleteOnAck deletes a row when its message is acked, instead of
	// marking it acked (watermill-sql's default, which keeps every message
	// in the table forever). Either way unacked rows are found through a
	// partial index, so acked rows do not slow the polls down.
	DeleteOnAck bool `yaml:"delete_on_ack"`
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

func invalid(key, format string, args ...any) error {
	return config.Field(key, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...)))
}

func (c TransportConfig) validate() error {
	kind := c.kind()
	known := false
	for _, k := range Kinds() {
		if k == kind {
			known = true
		}
	}
	if !known {
		return invalid("kind", "unknown transport kind %q (want one of %s)", c.Kind, strings.Join(Kinds(), ", "))
	}
	if c.Concurrency < 0 || c.Concurrency > maxConcurrency {
		return invalid("concurrency", "%d out of range (1..%d; 0 means %d)", c.Concurrency, maxConcurrency, DefaultConcurrency)
	}
	if c.AckDeadline < 0 {
		return invalid("ack_deadline", "must not be negative, got %s", c.AckDeadline)
	}
	if c.DialTimeout < 0 {
		return invalid("dial_timeout", "must not be negative, got %s", c.DialTimeout)
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
	for _, s := range sections {
		if s.present && s.kind != kind {
			return invalid(s.kind, "section %q is set but kind is %q", s.kind, kind)
		}
	}
	switch kind {
	case KindAMQP:
		return c.validateAMQP()
	case KindKafka:
		if c.Kafka == nil || len(c.Kafka.Brokers) == 0 {
			return invalid("kafka.brokers", "kind kafka needs at least one broker (host:port)")
		}
		for i, b := range c.Kafka.Brokers {
			if err := checkHostPort(b); err != nil {
				return invalid(fmt.Sprintf("kafka.brokers[%d]", i), "%v", err)
			}
		}
		if p := c.Kafka.Partitions; p != 0 && p < c.concurrency() {
			return invalid("kafka.partitions", "%d is below concurrency %d: a Kafka group runs one message per partition at a time", p, c.concurrency())
		}
		if c.Kafka.Partitions < 0 {
			return invalid("kafka.partitions", "must not be negative, got %d", c.Kafka.Partitions)
		}
	case KindNATS:
		if c.NATS == nil || c.NATS.URL == "" {
			return invalid("nats.url", "kind nats needs a url (nats://host:4222)")
		}
		if err := checkURL(c.NATS.URL, "nats", "tls"); err != nil {
			return invalid("nats.url", "%v", err)
		}
	case KindRedis:
		if c.Redis == nil || c.Redis.Addr == "" {
			return invalid("redis.addr", "kind redis needs an addr (host:6379)")
		}
		if err := checkHostPort(c.Redis.Addr); err != nil {
			return invalid("redis.addr", "%v", err)
		}
		if c.Redis.DB < 0 {
			return invalid("redis.db", "must not be negative, got %d", c.Redis.DB)
		}
	case KindPostgres:
		if c.Postgres == nil || c.Postgres.URL == "" {
			return invalid("postgres.url", "kind postgres needs a url (postgres://user@host:5432/db)")
		}
		if strings.Contains(c.Postgres.URL, "://") {
			if _, err := redact.ParseURL(c.Postgres.URL); err != nil {
				return invalid("postgres.url", "%v", err)
			}
		}
		if c.Postgres.PollInterval < 0 {
			return invalid("postgres.poll_interval", "must not be negative, got %s", c.Postgres.PollInterval)
		}
		if c.Postgres.MaxConns < 0 || (c.Postgres.MaxConns > 0 && c.Postgres.MaxConns < c.concurrency()+1) {
			return invalid("postgres.max_conns", "%d is too small: every in-flight message holds a connection (need at least concurrency + 1 = %d)", c.Postgres.MaxConns, c.concurrency()+1)
		}
		if c.ConsumerGroup != "" {
			return invalid("consumer_group", "postgres runs in queue mode (one table per topic) and has no consumer groups")
		}
	}
	return nil
}

func (c TransportConfig) validateAMQP() error {
	a := c.AMQP
	if a == nil || a.URL == "" {
		return invalid("amqp.url", "kind amqp needs a url (amqp://user:pass@host:5672/)")
	}
	if err := checkURL(a.URL, "amqp", "amqps"); err != nil {
		return invalid("amqp.url", "%v", err)
	}
	switch a.QueueType {
	case "", amqpQueueTypeClassic, amqpQueueTypeQuorum:
	default:
		return invalid("amqp.queue_type", "unknown queue type %q (want classic or quorum)", a.QueueType)
	}
	if a.MaxPriority != nil {
		p := *a.MaxPriority
		if p < 0 || p > maxAMQPPriority {
			return invalid("amqp.max_priority", "%d out of range (0..%d; 0 disables priority)", p, maxAMQPPriority)
		}
		if p > 0 && a.QueueType == amqpQueueTypeQuorum {
			return invalid("amqp.max_priority", "quorum queues do not take x-max-priority; leave it unset or 0")
		}
	}
	return nil
}

func checkURL(raw string, schemes ...string) error {
	u, err := redact.ParseURL(raw)
	if err != nil {
		return err
	}
	ok := false
	for _, s := range schemes {
		if u.Scheme == s {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("scheme %q not accepted (want %s)", u.Scheme, strings.Join(schemes, " or "))
	}
	if u.Host == "" {
		return fmt.Errorf("no host in %q", redact.URL(raw))
	}
	return nil
}

func checkHostPort(addr string) error {
	i := strings.LastIndex(addr, ":")
	if i <= 0 || i == len(addr)-1 || strings.ContainsAny(addr, "@/") {
		return fmt.Errorf("%q is not host:port", redact.URL(addr))
	}
	return nil
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

func (c TransportConfig) concurrency() int {
	if c.Concurrency == 0 {
		return DefaultConcurrency
	}
	return c.Concurrency
}

func (c TransportConfig) ackDeadline() time.Duration {
	if c.AckDeadline == 0 {
		return DefaultAckDeadline
	}
	return c.AckDeadline
}

func (c TransportConfig) dialTimeout() time.Duration {
	if c.DialTimeout == 0 {
		return DefaultDialTimeout
	}
	return c.DialTimeout
}

func (c TransportConfig) consumerGroup() string {
	if c.ConsumerGroup == "" {
		return DefaultConsumerGroup
	}
	return c.ConsumerGroup
}

func (c TransportConfig) amqpMaxPriority() int {
	if c.AMQP == nil || c.AMQP.QueueType == amqpQueueTypeQuorum {
		return 0
	}
	if c.AMQP.MaxPriority == nil {
		return DefaultAMQPPriority
	}
	return *c.AMQP.MaxPriority
}

func (c TransportConfig) kafkaPartitions() int {
	if c.Kafka != nil && c.Kafka.Partitions > 0 {
		return c.Kafka.Partitions
	}
	return c.concurrency()
}

func (c TransportConfig) pollInterval() time.Duration {
	if c.Postgres == nil || c.Postgres.PollInterval == 0 {
		return DefaultPollInterval
	}
	return c.Postgres.PollInterval
}

func (c TransportConfig) postgresMaxConns() int {
	if c.Postgres != nil && c.Postgres.MaxConns > 0 {
		return c.Postgres.MaxConns
	}
	return 8*c.concurrency() + 4
}
