package priority

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/metric"
)

// Defaults of a Scheduler built without options.
const (
	DefaultSlots      = 8
	DefaultAging      = 500 * time.Millisecond
	DefaultMaxWaiting = 10000
	DefaultRetryAfter = time.Second
	DefaultName       = "default"
)

// Option configures a Scheduler.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name            string
	slots           int
	aging           time.Duration
	maxWaiting      int
	maxWait         time.Duration
	maxHold         time.Duration
	defaultPriority int
	retryAfter      time.Duration
	meterProvider   metric.MeterProvider
}

func newConfig(opts ...Option) (config, error) {
	c := config{
		name:            DefaultName,
		slots:           DefaultSlots,
		aging:           DefaultAging,
		maxWaiting:      DefaultMaxWaiting,
		defaultPriority: MinPriority,
		retryAfter:      DefaultRetryAfter,
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c, c.validate()
}

// validate holds every rule for option values; the config sections reuse it
// through newConfig.
func (c config) validate() error {
	switch {
	case c.name == "":
		return invalid("name", "must not be empty")
	case c.slots < 1:
		return invalid("slots", "must be at least 1, got %d", c.slots)
	case c.aging < 0 || c.aging > maxAging:
		return invalid("aging", "must be within 0..%s, got %s", maxAging, c.aging)
	case c.maxWaiting < 0:
		return invalid("max_waiting", "must not be negative, got %d", c.maxWaiting)
	case c.maxWait < 0:
		return invalid("max_wait", "must not be negative, got %s", c.maxWait)
	case c.maxHold < 0:
		return invalid("max_hold", "must not be negative, got %s", c.maxHold)
	case c.defaultPriority < MinPriority || c.defaultPriority > MaxPriority:
		return invalid("default_priority", "must be in %d..%d, got %d", MinPriority, MaxPriority, c.defaultPriority)
	case c.retryAfter < 0:
		return invalid("retry_after", "must not be negative, got %s", c.retryAfter)
	}
	return nil
}

// waitBound is the longest a message may wait: the shorter of max_wait and
// max_hold, zero for no bound.
func (c config) waitBound() time.Duration {
	switch {
	case c.maxWait == 0:
		return c.maxHold
	case c.maxHold == 0 || c.maxWait < c.maxHold:
		return c.maxWait
	}
	return c.maxHold
}

// WithName names the scheduler in telemetry (attribute "scheduler") and in
// Stats. Default "default"; empty is invalid. The config section uses the
// scheduler's key under `schedulers:`.
func WithName(name string) Option { return optionFunc(func(c *config) { c.name = name }) }

// WithSlots sets how many messages may run at once across every handler
// sharing the scheduler: the concurrency the downstream can take. Default 8;
// it must be at least 1.
func WithSlots(n int) Option { return optionFunc(func(c *config) { c.slots = n }) }

// WithAging sets how fast waiting raises a message's effective priority: one
// level per aging of waiting. Default 500ms. Zero disables aging, which is
// strict priority: low priorities starve under sustained load, so use it
// only to compare. It must be within 0..24h.
func WithAging(d time.Duration) Option { return optionFunc(func(c *config) { c.aging = d }) }

// WithMaxWaiting bounds how many messages may wait for a slot. When it is
// full, the waiting or arriving message with the lowest effective priority
// (newest on ties) is rejected with ErrQueueFull. Default 10000; zero means
// no bound; negative is invalid.
func WithMaxWaiting(n int) Option { return optionFunc(func(c *config) { c.maxWaiting = n }) }

// WithMaxWait bounds how long one message waits for a slot; past it the
// message leaves the queue with ErrMaxWait. Default zero: no bound (the
// message context still ends the wait). Negative is invalid.
func WithMaxWait(d time.Duration) Option { return optionFunc(func(c *config) { c.maxWait = d }) }

// WithMaxHold is the shared Levee hold bound: set it below the transport's
// ack deadline (JetStream AckWait, SQL AckDeadline) so a wait never outlasts
// it. A wait reaching it ends with ErrMaxWait. With both set, the shorter of
// max_wait and max_hold applies. Default zero: no bound. Negative is
// invalid.
func WithMaxHold(d time.Duration) Option { return optionFunc(func(c *config) { c.maxHold = d }) }

// WithDefaultPriority sets the priority of messages without a valid
// levee_priority value (a handler can override it with
// WithHandlerPriority). Default MinPriority (0); it must be within
// MinPriority..MaxPriority.
func WithDefaultPriority(p int) Option {
	return optionFunc(func(c *config) { c.defaultPriority = p })
}

// WithRetryAfter sets the redelivery delay carried by every RejectError
// (RetryAfter). Default 1s; zero asks for an immediate redelivery; negative
// is invalid.
func WithRetryAfter(d time.Duration) Option { return optionFunc(func(c *config) { c.retryAfter = d }) }

// WithMeterProvider records the scheduler's metrics (docs/TELEMETRY.md,
// section priority) with mp. Default nil: no metrics, no cost.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}

// MiddlewareOption configures one handler's use of a shared Scheduler; pass
// it to Scheduler.HandlerMiddleware.
type MiddlewareOption interface{ apply(*mwConfig) }

type mwOptionFunc func(*mwConfig)

func (f mwOptionFunc) apply(c *mwConfig) { f(c) }

type mwConfig struct {
	priorityFunc    func(*message.Message) int
	defaultPriority int
	hasDefault      bool
}

// WithPriorityFunc takes each message's priority from fn instead of the
// levee_priority metadata. Its result is clamped to MinPriority..MaxPriority.
// Default nil: read levee_priority. fn must be safe for concurrent use. It
// runs before the message takes a slot, so a panic in fn holds none and is
// handled like a handler panic by the recover slot further out.
func WithPriorityFunc(fn func(*message.Message) int) MiddlewareOption {
	return mwOptionFunc(func(c *mwConfig) { c.priorityFunc = fn })
}

// WithHandlerPriority sets the priority of this handler's messages that
// carry no valid levee_priority value, overriding the scheduler's
// WithDefaultPriority. It must be within MinPriority..MaxPriority.
func WithHandlerPriority(p int) MiddlewareOption {
	return mwOptionFunc(func(c *mwConfig) { c.defaultPriority, c.hasDefault = p, true })
}

func newMWConfig(opts ...MiddlewareOption) (mwConfig, error) {
	var c mwConfig
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.hasDefault && (c.defaultPriority < MinPriority || c.defaultPriority > MaxPriority) {
		return c, invalid("default_priority", "must be in %d..%d, got %d", MinPriority, MaxPriority, c.defaultPriority)
	}
	return c, nil
}
