package batch

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Defaults used when the matching option is not given.
const (
	DefaultMaxSize     = 100
	DefaultMaxWait     = 50 * time.Millisecond
	DefaultMaxInFlight = 2
)

// Option configures a Batcher. Options are applied in order; a later option
// overrides an earlier one of the same kind.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	maxSize     int
	maxBytes    int // 0: no byte limit
	maxWait     time.Duration
	maxInFlight int
	maxHold     time.Duration // 0: no bound
	concurrency int           // 0: unknown
	dedupLease  time.Duration // 0: no deduplicator known
	logger      watermill.LoggerAdapter
	tp          trace.TracerProvider
	mp          metric.MeterProvider

	// errs holds the first invalid option per key, in the order given.
	errs []*settingError
}

func newConfig() *config {
	return &config{
		maxSize:     DefaultMaxSize,
		maxWait:     DefaultMaxWait,
		maxInFlight: DefaultMaxInFlight,
		logger:      watermill.NopLogger{},
	}
}

// settingError is an invalid setting: key is the configuration key (as in
// the YAML section), err says what is wrong.
type settingError struct {
	key string
	err error
}

func (c *config) invalid(key, format string, args ...any) {
	c.errs = append(c.errs, &settingError{key: key, err: fmt.Errorf(format, args...)})
}

// check validates settings that depend on each other. It runs after every
// option was applied, in New and in Config.Validate alike.
func (c *config) check() {
	if c.maxHold > 0 && c.maxHold <= c.maxWait {
		c.invalid("max_hold", "must be longer than max_wait (%s), got %s: every batch would be failed before it lingers out", c.maxWait, c.maxHold)
	}
}

// err returns the first invalid setting as an error wrapping
// ErrInvalidConfig, or nil.
func (c *config) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	e := c.errs[0]
	return fmt.Errorf("%w: %s: %w", ErrInvalidConfig, e.key, e.err)
}

// WithMaxSize flushes a batch as soon as it holds n messages (flush reason
// "size"). Default DefaultMaxSize (100). Zero or negative is an error from
// New.
func WithMaxSize(n int) Option {
	return optionFunc(func(c *config) {
		if n <= 0 {
			c.invalid("max_size", "must be positive, got %d", n)
			return
		}
		c.maxSize = n
	})
}

// WithMaxBytes flushes a batch once the sum of its messages' payload sizes
// reaches n bytes (flush reason "bytes"), and never lets a message join a
// batch that it would push over n: that batch is flushed first. A single
// message larger than n travels in a batch of its own. Default: no byte
// limit. Zero or negative is an error from New.
func WithMaxBytes(n int) Option {
	return optionFunc(func(c *config) {
		if n <= 0 {
			c.invalid("max_bytes", "must be positive, got %d", n)
			return
		}
		c.maxBytes = n
	})
}

// WithMaxWait flushes a batch d after its first message joined (flush reason
// "wait"), however few messages it holds: d bounds the linger a message
// spends in an open batch. Default DefaultMaxWait (50ms). Zero or negative
// is an error from New.
func WithMaxWait(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.invalid("max_wait", "must be positive, got %s", d)
			return
		}
		c.maxWait = d
	})
}

// WithMaxInFlight bounds how many batches the batch func processes at once.
// A batch that is ready while n batches run waits, in order, for one of them
// to finish; new messages meanwhile fill the next batch. Default
// DefaultMaxInFlight (2). Zero or negative is an error from New.
func WithMaxInFlight(n int) Option {
	return optionFunc(func(c *config) {
		if n <= 0 {
			c.invalid("max_in_flight", "must be positive, got %d", n)
			return
		}
		c.maxInFlight = n
	})
}

// WithMaxHold bounds how long a batch may wait, from its first message, to
// be handed to the batch func (linger plus queueing behind max_in_flight
// running batches). A batch not started by then is failed as a whole with a
// *HoldError (wrapping ErrMaxHold, with RetryAfter), so the transport
// redelivers its messages instead of their ack deadline running out. It must
// be longer than max_wait. Default zero: no bound. Negative is an error from
// New.
func WithMaxHold(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("max_hold", "must be zero (no bound) or positive, got %s", d)
			return
		}
		c.maxHold = d
	})
}

// WithConcurrency tells the Batcher how many messages the transport hands
// to the handler at once (for example the adapters' consumer concurrency).
// Batching needs several messages in flight: when max_size is larger than n
// a batch can never fill, every batch waits max_wait, and New logs a warning
// through the logger. Default zero: unknown, no check. Negative is an error
// from New.
func WithConcurrency(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("concurrency", "must be zero (unknown) or positive, got %d", n)
			return
		}
		c.concurrency = n
	})
}

// WithDedupLease tells the Batcher the claim lease of the deduplicator
// whose middleware wraps its Handler (the dedup slot: pass the
// dedup.Dedup's Lease()). A message holds its claim while it waits in its
// batch, so when d is not above max_wait, New logs a warning through the
// logger (DedupLeaseWarning): in a batch that does not fill, the claim
// lapses before the func runs, and a duplicate delivered meanwhile runs
// too. It changes nothing else. A YAML handler gets the same check from
// config's Warnings. Default: no deduplicator known, no check. Zero or
// negative is an error from New (no deduplicator has such a lease).
func WithDedupLease(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.invalid("dedup_lease", "must be positive, got %s", d)
			return
		}
		c.dedupLease = d
	})
}

// WithLogger sets the logger for the start-up warnings and for batch func
// panics. Default (and nil): watermill.NopLogger.
func WithLogger(l watermill.LoggerAdapter) Option {
	return optionFunc(func(c *config) {
		if l == nil {
			l = watermill.NopLogger{}
		}
		c.logger = l
	})
}

// WithTracerProvider enables one span per batch, linked to the span context
// of every message in it: the span in its context (the tracing slot's
// consumer span), or else the W3C traceparent in its metadata. Default
// (and nil): no spans.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithMeterProvider enables the batch metrics (docs/TELEMETRY.md, section
// batch). Default (and nil): no metrics.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}
