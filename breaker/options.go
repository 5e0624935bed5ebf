package breaker

import (
	"math"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"go.opentelemetry.io/otel/metric"
)

// Defaults used when an option is not given.
const (
	DefaultConsecutiveFailures = 5
	DefaultMinRequests         = 20
	DefaultWindow              = 10 * time.Second
	DefaultOpenFor             = 10 * time.Second
	DefaultHalfOpenProbes      = 1
	DefaultDrainStart          = 0.1
	DefaultDrainAggression     = 1.0
)

// rollingBuckets is the number of buckets of the rolling window.
const rollingBuckets = 10

// Option configures a Breaker.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name                string
	consecutiveFailures int
	failureRatio        float64
	minRequests         int
	window              time.Duration
	openFor             time.Duration
	probes              int
	slowThreshold       time.Duration
	slowRatio           float64
	maxHold             time.Duration

	drain           bool
	drainWindow     time.Duration
	drainStart      float64
	drainAggression float64
	drainRate       float64
	separateDrain   bool

	isSuccessful func(error) bool
	isExcluded   func(error) bool
	onChange     []func(from, to State)

	mp     metric.MeterProvider
	logger watermill.LoggerAdapter
}

func newConfig(opts ...Option) (config, error) {
	c := config{
		name:        "breaker",
		minRequests: DefaultMinRequests,
		window:      DefaultWindow,
		openFor:     DefaultOpenFor,
		probes:      DefaultHalfOpenProbes,
		logger:      watermill.NopLogger{},
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	if c.consecutiveFailures == 0 && c.failureRatio == 0 && c.slowRatio == 0 {
		c.consecutiveFailures = DefaultConsecutiveFailures
	}
	return c, nil
}

func badFloat(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

// validate holds every rule on settings; New and Config.Validate share it.
// Keys are the YAML keys of the breaker section.
func (c *config) validate() error {
	switch {
	case c.consecutiveFailures < 0 || int64(c.consecutiveFailures) > math.MaxUint32:
		return invalid("consecutive_failures", "must be between 0 (off) and %d, got %d", uint32(math.MaxUint32), c.consecutiveFailures)
	case badFloat(c.failureRatio) || c.failureRatio < 0 || c.failureRatio > 1:
		return invalid("failure_ratio", "must be between 0 (off) and 1, got %v", c.failureRatio)
	case c.minRequests < 1 || int64(c.minRequests) > math.MaxUint32:
		return invalid("min_requests", "must be between 1 and %d, got %d", uint32(math.MaxUint32), c.minRequests)
	case c.window < time.Millisecond:
		return invalid("window", "must be at least 1ms, got %s", c.window)
	case c.openFor <= 0:
		return invalid("open_for", "must be positive, got %s", c.openFor)
	case c.probes < 1 || int64(c.probes) > math.MaxUint32:
		return invalid("half_open_probes", "must be between 1 and %d, got %d", uint32(math.MaxUint32), c.probes)
	case c.slowThreshold < 0:
		return invalid("slow_call.threshold", "must be 0 (off) or positive, got %s", c.slowThreshold)
	case badFloat(c.slowRatio) || c.slowRatio < 0 || c.slowRatio > 1:
		return invalid("slow_call.ratio", "must be between 0 (off) and 1, got %v", c.slowRatio)
	case c.slowRatio > 0 && c.slowThreshold == 0:
		return invalid("slow_call.threshold", "must be set when slow_call.ratio is")
	case c.maxHold < 0:
		return invalid("max_hold", "must be 0 (no bound) or positive, got %s", c.maxHold)
	case c.drainRate < 0 || badFloat(c.drainRate):
		return invalid("drain.rate", "must be 0 (observed throughput) or positive, got %v", c.drainRate)
	case c.separateDrain && c.slowThreshold > 0:
		return invalid("slow_call.threshold", "cannot be combined with a separate drain: the drain's wait would count as slowness")
	}
	if !c.drain {
		return nil
	}
	switch {
	case c.drainWindow <= 0:
		return invalid("drain.window", "must be positive when a drain is configured, got %s", c.drainWindow)
	case badFloat(c.drainStart) || c.drainStart <= 0 || c.drainStart > 1:
		return invalid("drain.start", "must be above 0%% and at most 100%%, got %v%%", c.drainStart*100)
	case badFloat(c.drainAggression) || c.drainAggression <= 0:
		return invalid("drain.aggression", "must be positive, got %v", c.drainAggression)
	}
	return nil
}

// WithName names the breaker in logs and in the "breaker" attribute of its
// metrics. Default "breaker".
func WithName(name string) Option {
	return optionFunc(func(c *config) { c.name = name })
}

// WithConsecutiveFailures trips the breaker after n failures in a row while
// closed. Zero turns the policy off; negative is an error. When no trip
// policy is given at all, the breaker trips after DefaultConsecutiveFailures
// (5) consecutive failures.
func WithConsecutiveFailures(n int) Option {
	return optionFunc(func(c *config) { c.consecutiveFailures = n })
}

// WithFailureRatio trips the breaker when failures make up at least ratio
// (0 to 1) of the calls completed in the rolling window (see WithWindow),
// once at least minRequests calls were counted there. A ratio of zero turns
// the policy off; minRequests must be 1 or more (default
// DefaultMinRequests, 20). Excluded calls do not count.
func WithFailureRatio(ratio float64, minRequests int) Option {
	return optionFunc(func(c *config) { c.failureRatio, c.minRequests = ratio, minRequests })
}

// WithWindow sets the rolling window over which the failure and slow-call
// ratios are computed (10 buckets, as gobreaker v2's rolling counts). Default
// DefaultWindow (10s); it must be at least 1ms.
func WithWindow(d time.Duration) Option {
	return optionFunc(func(c *config) { c.window = d })
}

// WithOpenFor sets how long the breaker stays open before it lets probes
// through (half-open). Default DefaultOpenFor (10s); it must be positive.
func WithOpenFor(d time.Duration) Option {
	return optionFunc(func(c *config) { c.openFor = d })
}

// WithHalfOpenProbes sets how many messages go through while half-open;
// that many consecutive successes close the breaker, one failure reopens
// it. Other messages keep waiting. Default 1; it must be 1 or more.
func WithHalfOpenProbes(n int) Option {
	return optionFunc(func(c *config) { c.probes = n })
}

// WithSlowCall makes calls slower than threshold count as failures (as
// resilience4j does), and, when ratio is above zero, trips the breaker when
// slow calls make up at least ratio of the calls completed in the rolling
// window (with the same minimum number of calls as WithFailureRatio). A
// threshold of zero (the default) turns slow-call detection off. The time
// measured is the handler's only: not the time spent waiting in the
// breaker, nor the time Levee's layers further in spent waiting in the
// call (a priority slot, a rate-limit token, an inner breaker or its
// drain, a batch's start), which each of them adds to the delivery's wait
// account and the breaker takes off. The account costs one allocation per
// delivery, only with slow-call detection on.
func WithSlowCall(threshold time.Duration, ratio float64) Option {
	return optionFunc(func(c *config) { c.slowThreshold, c.slowRatio = threshold, ratio })
}

// WithMaxHold bounds how long a message may wait for the breaker (while
// open, half-open or draining). Past it the message gets an *OpenError
// (wrapping ErrOpen, with RetryAfter) and the router Nacks it. Set it below
// the transport's ack deadline. Zero (the default) means no bound: the
// wait ends only when the breaker lets the message through, the message
// context ends, or the Breaker is closed.
func WithMaxHold(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxHold = d })
}

// WithDrain turns on the drain after recovery: once the breaker closes,
// admitted throughput ramps from start (above 0, at most 1) to 100% over
// window, following max(start, (elapsed/window)^(1/aggression)) (Envoy's
// slow-start curve; aggression 1 is linear, above 1 faster at first). 100%
// is the throughput observed before the trip (a moving average of
// successful calls) or the rate set by WithDrainRate. Another trip during
// the drain restarts the cycle. Off by default; window must be positive,
// aggression positive.
func WithDrain(window time.Duration, start, aggression float64) Option {
	return optionFunc(func(c *config) {
		c.drain, c.drainWindow, c.drainStart, c.drainAggression = true, window, start, aggression
	})
}

// WithDrainRate sets the throughput (messages per second, shared by every
// handler of the breaker) that counts as 100% during the drain, instead of
// the observed one. Zero (the default) means observed. If neither a rate nor
// any throughput was observed, the breaker closes without a drain.
func WithDrainRate(perSecond float64) Option {
	return optionFunc(func(c *config) { c.drainRate = perSecond })
}

// WithSeparateDrain moves the drain's wait out of Middleware into
// DrainMiddleware, to be installed further in: in Levee's canonical order,
// in the ratelimit slot (chained before the rate limiter), so that a
// message holding a priority slot waits for the ramp's token and priority
// decides who goes first during the drain. Without this option (the
// default) Middleware waits for the ramp itself and DrainMiddleware passes
// messages through. The max hold of a drain wait in DrainMiddleware counts
// from the start of that wait. It cannot be combined with WithSlowCall: the
// breaker would time the drain's wait as part of the call.
func WithSeparateDrain() Option {
	return optionFunc(func(c *config) { c.separateDrain = true })
}

// WithIsSuccessful sets the hook deciding whether a handler error counts as
// a success (true) or a failure. It is called only for errors that are not
// excluded (see WithIsExcluded). Default: only a nil error is a success. It
// must be a pure, fast function; it is called outside the breaker's lock.
func WithIsSuccessful(fn func(error) bool) Option {
	return optionFunc(func(c *config) { c.isSuccessful = fn })
}

// WithIsExcluded adds a hook deciding that a handler error counts as
// neither success nor failure. The built-in exclusions always apply:
// context.Canceled and errors whose ErrorClass() is "permanent" or
// "validation" (they are not the downstream's fault). Default: none beyond
// the built-in ones. It must be pure and fast (called outside the breaker's lock).
func WithIsExcluded(fn func(error) bool) Option {
	return optionFunc(func(c *config) { c.isExcluded = fn })
}

// WithOnStateChange adds a hook called on every state change, outside any
// lock and in order, from the goroutine that noticed the change. The hook
// may call the Breaker (State, ForceOpen, ...). Hooks may be added several
// times; they run in the order given.
func WithOnStateChange(fn func(from, to State)) Option {
	return optionFunc(func(c *config) {
		if fn != nil {
			c.onChange = append(c.onChange, fn)
		}
	})
}

// WithMeterProvider sets the meter provider for the instruments listed in
// docs/TELEMETRY.md. Default nil: no metrics.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithLogger sets the logger for state changes. Default: no logging.
func WithLogger(l watermill.LoggerAdapter) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}
