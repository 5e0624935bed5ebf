package ratelimit

import (
	"math"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"go.opentelemetry.io/otel/metric"

	"github.com/levee-dev/levee/internal/gcra"
)

// Mode is what the middleware does when no token is free.
type Mode int

const (
	// ModeWait (the default) makes the handler wait for a token, so the
	// consumer slows down and backpressure reaches the broker. The wait
	// honours the message context, max_wait and max_hold.
	ModeWait Mode = iota
	// ModeReject fails the message at once with a *LimitedError (wrapping
	// ErrLimited) whose RetryAfter is the expected wait, so the transport
	// can redeliver it later (a plain Nack where it cannot delay). The
	// messages rejected one after the other are told the tokens to come
	// one by one, so a backlog comes back at the rate (see Reserve).
	ModeReject
)

// String returns "wait" or "reject".
func (m Mode) String() string {
	switch m {
	case ModeWait:
		return "wait"
	case ModeReject:
		return "reject"
	}
	return "Mode(" + itoa(int(m)) + ")"
}

// ParseMode parses "wait" or "reject" ("" is wait).
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "wait":
		return ModeWait, nil
	case "reject":
		return ModeReject, nil
	}
	return 0, invalid("mode", `must be "wait" or "reject"`, s)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	neg := i < 0
	if neg {
		i = -i
	}
	var buf [20]byte
	n := len(buf)
	for i > 0 {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
	}
	if neg {
		n--
		buf[n] = '-'
	}
	return string(buf[n:])
}

// Option configures a Limiter.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// DefaultCatchUp is the default WithCatchUp bound.
const DefaultCatchUp = gcra.DefaultCatchUp

type config struct {
	rate      float64
	rateSet   bool
	unlimited bool
	burst     int
	burstSet  bool
	mode      Mode
	maxWait   time.Duration
	maxHold   time.Duration
	catchUp   time.Duration
	name      string
	mp        metric.MeterProvider
	logger    watermill.LoggerAdapter
	keyed     *keyConfig
	adaptive  *Adaptive
	fleet     *Fleet
	errs      []error
}

func newConfig(opts []Option) *config {
	c := &config{burst: 1, mode: ModeWait, catchUp: DefaultCatchUp, unlimited: true}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	return c
}

// validate checks the settings; Config.Validate uses it too.
func (c *config) validate() error {
	if len(c.errs) > 0 {
		return c.errs[0]
	}
	if c.rateSet {
		if err := checkRate("rate", c.rate); err != nil {
			return err
		}
	}
	if err := checkBurst("burst", c.burst, c.rateSet && c.rate > 0); err != nil {
		return err
	}
	if c.mode != ModeWait && c.mode != ModeReject {
		return invalid("mode", "must be ModeWait or ModeReject", int(c.mode))
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"max_wait", c.maxWait}, {"max_hold", c.maxHold}, {"catch_up", c.catchUp}} {
		if d.v < 0 {
			return invalid(d.field, "must not be negative", d.v)
		}
	}
	if c.keyed != nil {
		if err := c.keyed.validate(); err != nil {
			return err
		}
	}
	if c.adaptive != nil {
		if err := c.adaptive.validate(c); err != nil {
			return err
		}
	}
	if c.fleet != nil {
		return c.fleet.validate()
	}
	return nil
}

func checkRate(what string, r float64) error {
	if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
		return invalid(what, "must be a finite number of events per second, 0 or more", r)
	}
	return nil
}

func checkBurst(field string, n int, positiveRate bool) error {
	if n < 0 {
		return invalid(field, "must not be negative", n)
	}
	if n == 0 && positiveRate {
		return invalid(field, "must be at least 1 with a positive rate", n)
	}
	return nil
}

// maxWaitNS is the effective bound on a wait in ns: the smaller of max_wait
// and max_hold that is set, 0 for none.
func (c *config) maxWaitNS() float64 {
	d := c.maxWait
	if c.maxHold > 0 && (d == 0 || c.maxHold < d) {
		d = c.maxHold
	}
	return float64(d)
}

// WithRate sets the limit in events per second. It must be finite and 0 or
// more; NaN, negative and infinite values make New fail with ErrInvalidConfig.
// A rate of 0 admits nothing: every wait lasts until its context ends, its
// max_wait passes, or SetRate raises the rate (reject mode rejects
// everything, with RetryAfter ZeroRateRetryAfter). Rates far beyond what a
// clock can resolve (1e12/s) are accepted and behave as nearly unlimited.
// Default: no limit (New without WithRate is a pass-through until SetRate).
func WithRate(perSecond float64) Option {
	return optionFunc(func(c *config) {
		c.rate, c.rateSet, c.unlimited = perSecond, true, false
	})
}

// WithBurst sets how many permits may be taken at once after an idle
// period (the bucket size). Default 1, the strictest spacing. A burst of 0
// is an error with a positive rate; a negative burst is always an error.
func WithBurst(n int) Option {
	return optionFunc(func(c *config) { c.burst, c.burstSet = n, true })
}

// WithMode sets what the middleware does without a free token. Default
// ModeWait.
func WithMode(m Mode) Option { return optionFunc(func(c *config) { c.mode = m }) }

// WithMaxWait bounds a wait: a message whose expected wait exceeds d is
// rejected with a *LimitedError (RetryAfter = the expected wait) instead of
// waiting, and a queued wait that outlasts d (after SetRate lowered the
// rate) ends the same way. Zero, the default, means no bound; negative is
// an error.
func WithMaxWait(d time.Duration) Option { return optionFunc(func(c *config) { c.maxWait = d }) }

// WithMaxHold is the shared max-hold bound (config key max_hold), set by
// the integrator from the transport's ack deadline. It acts like
// WithMaxWait; when both are set the smaller one applies. Zero, the
// default, means no bound; negative is an error.
func WithMaxHold(d time.Duration) Option { return optionFunc(func(c *config) { c.maxHold = d }) }

// WithCatchUp bounds the catch-up of permits whose slot passed while the
// runtime woke a waiter late (timer granularity, scheduling delay). The
// limiter measures that lateness when the waiter runs, and the consumer's
// next requests continue the schedule by at most that much, so a burst-1
// limiter holds rates whose interval is shorter than the timer
// granularity; the price is that after a late wake-up up to rate*lateness
// permits (lateness <= d) go back to back. Pauses of the consumer itself
// are never caught up. In reject mode, a token a rejection was told (see
// Reserve) is taken in its slot up to d late, for the redelivery's
// latency. Zero gives strict spacing with the throughput
// losses of x/time/rate. Default DefaultCatchUp (50ms, enough for a
// loaded 2-core machine); negative is an error.
func WithCatchUp(d time.Duration) Option { return optionFunc(func(c *config) { c.catchUp = d }) }

// WithName names the limiter in metrics (attribute limiter). Default "".
func WithName(name string) Option { return optionFunc(func(c *config) { c.name = name }) }

// WithMeterProvider records the limiter's metrics (see docs/TELEMETRY.md)
// with mp. Default nil: no metrics, no cost. Pass otel.GetMeterProvider()
// to use the global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithLogger logs recovered key-function panics and adaptive limit
// changes. Default nil: no logging.
func WithLogger(l watermill.LoggerAdapter) Option {
	return optionFunc(func(c *config) { c.logger = l })
}
