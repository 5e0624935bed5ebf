package dlq

import (
	"math/rand/v2"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"go.opentelemetry.io/otel/metric"
)

// Option configures a Retrier. Options are applied in order; a later option
// overrides an earlier one.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// RetryInfo describes one retry, passed to the WithOnRetry hook before the
// wait. Delay is exactly the delay that is then waited.
type RetryInfo struct {
	Handler     string
	Topic       string
	MessageUUID string
	Attempt     int           // the attempt that failed (1-based)
	Delay       time.Duration // the wait before the next attempt
	Err         error         // the error of the failed attempt
}

// DeadLetterInfo describes a confirmed dead letter, passed to the
// WithOnDeadLetter hook after the DLQ publish returned nil.
type DeadLetterInfo struct {
	Handler     string
	Topic       string // the subscribed topic
	DLQTopic    string
	MessageUUID string
	Class       Class
	Fingerprint string
	Attempts    int
	Err         error
}

type config struct {
	backoff        Backoff
	maxHold        time.Duration
	maxDeferred    time.Duration
	topic          string
	topicFunc      func(subscribed string) string
	consumerGroup  string
	classifier     Classifier
	jitter         func() float64
	onRetry        func(RetryInfo)
	onDeadLetter   func(DeadLetterInfo)
	logger         watermill.LoggerAdapter
	meterProvider  metric.MeterProvider
	tableSize      int
	tableTTL       time.Duration
	maxErrorLength int
	validator      func(topic string, payload []byte) error
	attemptStore   AttemptStore
	attemptTTL     time.Duration
}

// Defaults of the settings that have no Backoff field.
const (
	DefaultTableSize      = 10000
	DefaultTableTTL       = 10 * time.Minute
	DefaultMaxErrorLength = 1024
)

func newConfig(opts []Option) config {
	c := config{
		backoff:        DefaultBackoff(),
		jitter:         rand.Float64,
		logger:         watermill.NopLogger{},
		tableSize:      DefaultTableSize,
		tableTTL:       DefaultTableTTL,
		maxErrorLength: DefaultMaxErrorLength,
		attemptTTL:     DefaultAttemptTTL,
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

func (c *config) validate() error {
	if err := c.backoff.Validate(); err != nil {
		return err
	}
	switch {
	case c.maxHold < 0:
		return fieldErr("max_hold", "must be >= 0, got %s", c.maxHold)
	case c.maxDeferred < 0:
		return fieldErr("max_deferred", "must be >= 0, got %s", c.maxDeferred)
	case c.tableSize < 0:
		return fieldErr("attempt_table_size", "must be >= 0, got %d", c.tableSize)
	case c.tableTTL <= 0:
		return fieldErr("attempt_table_ttl", "must be > 0, got %s", c.tableTTL)
	case c.maxErrorLength < 16:
		return fieldErr("max_error_length", "must be >= 16, got %d", c.maxErrorLength)
	case c.jitter == nil:
		return fieldErr("jitter", "must not be nil")
	case c.logger == nil:
		return fieldErr("logger", "must not be nil")
	case c.attemptTTL <= 0:
		return fieldErr("attempt_ttl", "must be > 0, got %s", c.attemptTTL)
	}
	return nil
}

// WithBackoff sets the whole retry policy. Default DefaultBackoff(). It is
// validated by New.
func WithBackoff(b Backoff) Option { return optionFunc(func(c *config) { c.backoff = b }) }

// WithMaxAttempts sets Backoff.MaxAttempts (default 5; 1 means no retry).
func WithMaxAttempts(n int) Option {
	return optionFunc(func(c *config) { c.backoff.MaxAttempts = n })
}

// WithMaxHold bounds how long one delivery may be held by the retry loop
// (the transport's ack deadline): a backoff wait that would end later than
// maxHold after the delivery arrived is not slept; the message is Nacked with
// a *RetryLaterError whose RetryAfter is the delay. Zero (the default) means
// no bound.
func WithMaxHold(d time.Duration) Option { return optionFunc(func(c *config) { c.maxHold = d }) }

// WithMaxDeferred dead-letters a message that keeps being deferred: its
// first deferral (a breaker open past its hold, a rate limit or a
// scheduler that shed it, dedup busy elsewhere, a handler's levee.Defer)
// was d or longer ago and it is deferred again (a success or a dead letter
// ends the count). The letter's class is ClassExhausted and its error
// wraps ErrDeferredTooLong and the last deferral. Zero (the default)
// means no bound: a deferral is never dead-lettered (the deferral
// contract), so a message an overload or an outage keeps deferring waits
// on the broker however long that lasts. Like the attempt table it is per
// process: the clock starts in the process that first deferred the
// message, and a restart (or an eviction from the table) starts it again.
func WithMaxDeferred(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxDeferred = d })
}

// WithTopic sets the dead-letter topic. Default "" means
// "<subscribed topic>.dlq". Overrides WithTopicFunc. A message consumed
// from the topic itself is not dead-lettered to it (the letter would come
// back): the dead-lettering fails with ErrTopicLoop (Nack).
func WithTopic(topic string) Option {
	return optionFunc(func(c *config) { c.topic, c.topicFunc = topic, nil })
}

// WithTopicFunc derives the dead-letter topic from the subscribed topic
// ("" when unknown). nil restores the default "<subscribed topic>.dlq". A
// function returning "" makes the dead-lettering fail with ErrNoTopic (Nack).
// Overrides WithTopic.
func WithTopicFunc(f func(subscribed string) string) Option {
	return optionFunc(func(c *config) { c.topic, c.topicFunc = "", f })
}

// WithConsumerGroup records the consumer group in dead letters
// (levee_consumer_group). Default "": the key is not written.
func WithConsumerGroup(group string) Option {
	return optionFunc(func(c *config) { c.consumerGroup = group })
}

// WithClassifier overrides classification; see Classifier. nil (the
// default) uses Classify.
func WithClassifier(f Classifier) Option { return optionFunc(func(c *config) { c.classifier = f }) }

// WithJitter sets the jitter source: a function returning a draw in [0, 1]
// (values outside are clamped), called once per retry; it must be safe for
// concurrent use. Default math/rand/v2.Float64. Returning a constant 1 gives
// the un-jittered schedule; tests pass a deterministic source. nil is
// rejected by New.
func WithJitter(f func() float64) Option { return optionFunc(func(c *config) { c.jitter = f }) }

// WithOnRetry sets a hook called before each backoff wait with the delay
// that is then waited. It runs on the handler goroutine, holding no lock.
// Default nil.
func WithOnRetry(f func(RetryInfo)) Option { return optionFunc(func(c *config) { c.onRetry = f }) }

// WithOnDeadLetter sets a hook called after each confirmed dead-letter
// publish. It runs on the handler goroutine, holding no lock. Default nil.
func WithOnDeadLetter(f func(DeadLetterInfo)) Option {
	return optionFunc(func(c *config) { c.onDeadLetter = f })
}

// WithLogger sets the logger for retries, dead letters and publish failures.
// Default watermill.NopLogger; nil is rejected by New.
func WithLogger(l watermill.LoggerAdapter) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithMeterProvider enables the metrics of docs/TELEMETRY.md (## dlq). nil
// (the default) means no metrics.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}

// WithAttemptTableSize bounds the in-process table that keeps the attempt
// count and first failure time of Nacked messages by UUID, for transports
// without a delivery count, and the deferrals of deferred ones. Messages
// with a failed attempt and messages that were only deferred are kept
// apart, up to n of each, so deferrals never evict an attempt count. When
// one side is full, its least recently used entry is evicted (a failing
// message's count then restarts). Default 10000; 0 disables the table.
func WithAttemptTableSize(n int) Option { return optionFunc(func(c *config) { c.tableSize = n }) }

// WithAttemptTableTTL sets how long an entry of the attempt table
// (WithAttemptTableSize) outlives the Nack that made it, or its deferred
// retry's due time when that is later, if the message does not come back
// to this process to settle it: the broker took the ack of a duplicate,
// another consumer took the redelivery, or the broker dropped the message.
// An expired entry is not used (a message that reuses the UUID counts from
// zero) and is removed as other messages pass or Pending is read. A
// redelivery later than that counts as a first delivery here, as after an
// eviction. Default 10m; values <= 0 are rejected by New.
func WithAttemptTableTTL(d time.Duration) Option {
	return optionFunc(func(c *config) { c.tableTTL = d })
}

// WithMaxErrorLength bounds the error message stored in levee_error, in
// bytes (cut at a UTF-8 boundary, with a "…" suffix). Default 1024; values
// below 16 are rejected by New.
func WithMaxErrorLength(n int) Option {
	return optionFunc(func(c *config) { c.maxErrorLength = n })
}

// WithValidator validates the payload before every attempt, with the
// subscribed topic ("" outside a router): a non-nil error ends the attempt
// without calling the handler and, unless it declares another class, is
// class validation, so the message is dead-lettered at once. A
// *validate.Registry's Validate method fits:
// dlq.WithValidator(registry.Validate). Default nil: no validation.
func WithValidator(f func(topic string, payload []byte) error) Option {
	return optionFunc(func(c *config) { c.validator = f })
}
