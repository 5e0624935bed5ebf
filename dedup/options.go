package dedup

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"go.opentelemetry.io/otel/metric"
)

// Defaults of New.
const (
	// DefaultLease is how long a claim holds an identity: the bound on
	// crash recovery (a delivery that died holding a claim blocks its
	// duplicates this long) and the longest a delivery may take from
	// claim to done, waits inside the dedup slot included.
	DefaultLease = 30 * time.Second
	// DefaultWindow is how long a done identity is remembered.
	DefaultWindow = 24 * time.Hour
	// DefaultStoreTimeout bounds each store call.
	DefaultStoreTimeout = 2 * time.Second
	// DefaultBusyRetry is the longest RetryAfter of the deferral of a
	// message whose identity is in progress elsewhere.
	DefaultBusyRetry = 250 * time.Millisecond
)

// Option configures New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	store        Store
	key          KeyFunc
	lease        time.Duration
	window       time.Duration
	storeTimeout time.Duration
	busyRetry    time.Duration
	name         string
	namespace    string
	mp           metric.MeterProvider
	logger       watermill.LoggerAdapter
	errs         []error
}

func newConfig() config {
	return config{
		key: UUIDKey, lease: DefaultLease, window: DefaultWindow,
		storeTimeout: DefaultStoreTimeout, busyRetry: DefaultBusyRetry,
	}
}

func (c *config) bad(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
}

// WithStore sets where claims and done marks live. Default: a MemStore of
// DefaultMaxKeys identities, for this process only. nil is an error.
func WithStore(s Store) Option {
	return optionFunc(func(c *config) {
		if s == nil {
			c.bad("nil store")
		}
		c.store = s
	})
}

// WithKeyFunc sets how a message's identity is read. Default: UUIDKey. See
// MetadataKey and JSONPointer. levee.KeyDedupID, when a message carries
// it, wins over fn. nil is an error.
func WithKeyFunc(fn KeyFunc) Option {
	return optionFunc(func(c *config) {
		if fn == nil {
			c.bad("nil key function")
		}
		c.key = fn
	})
}

// WithLease sets how long a claim holds an identity; default DefaultLease.
// It must cover the handler and every wait inside the dedup slot (breaker
// max hold, priority, rate limit, timeout, a batcher's max_wait): a claim
// whose lease ran out lets a duplicate run. Give a batcher the lease with
// batch.WithDedupLease(d.Lease()) and it warns when the lease is not above
// its max_wait. Zero or negative is an error.
func WithLease(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.bad("lease %v must be positive", d)
		}
		c.lease = d
	})
}

// WithWindow sets how long a done identity is remembered; default
// DefaultWindow. A duplicate arriving later runs again. Zero or negative
// is an error.
func WithWindow(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.bad("window %v must be positive", d)
		}
		c.window = d
	})
}

// WithStoreTimeout bounds each store call; default DefaultStoreTimeout.
// Zero or negative is an error.
func WithStoreTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.bad("store timeout %v must be positive", d)
		}
		c.storeTimeout = d
	})
}

// WithBusyRetry sets the longest RetryAfter of the deferral of a message
// in progress elsewhere (the deferral asks for the other claim's remaining
// lease, at most d); default DefaultBusyRetry. Zero or negative is an
// error.
func WithBusyRetry(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.bad("busy retry %v must be positive", d)
		}
		c.busyRetry = d
	})
}

// WithNamespace puts the deduplicator's identities in a namespace of the
// store (StoreKey(ns, identity)); default "" (none). Give each handler its
// own when several share a store and may consume the same message (a
// topic two handlers subscribe to): without it, the first handler's done
// mark would drop the message for the second. config sets the handler
// name for `store: shared`, and `levee dlq replay --dedup-store` asks
// under the dead letter's handler name.
func WithNamespace(ns string) Option { return optionFunc(func(c *config) { c.namespace = ns }) }

// WithName names the deduplicator in its log lines (field dedup);
// default "".
func WithName(name string) Option { return optionFunc(func(c *config) { c.name = name }) }

// WithMeterProvider turns the metrics on; nil (the default) means off,
// at no cost.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithLogger receives store failures after a handler ran (a done mark or a
// release that failed); nil (the default) means no logging.
func WithLogger(l watermill.LoggerAdapter) Option {
	return optionFunc(func(c *config) { c.logger = l })
}
