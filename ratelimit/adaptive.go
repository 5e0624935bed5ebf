package ratelimit

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// Adaptive configures a limit that follows the downstream's health (AIMD
// with a goodput-aware decrease). Every Interval the limiter looks at the
// messages its handler finished in that window:
//
//   - congested, when the share of failed messages is above MaxErrorRate or
//     the mean handler latency is above TargetLatency: the rate drops to
//     min(rate*Decrease, goodput), where goodput is the rate of successful
//     completions in the window (what the downstream actually delivered),
//     so one decision brings the rate under the new capacity and the
//     backlog drains;
//   - healthy and limiter-bound (at least 90% of the window's permits were
//     used): the rate grows by Increase;
//   - otherwise it stays, so a quiet period does not inflate the limit.
//
// The rate always stays within [Min, Max]. Failures are handler errors
// except those whose ErrorClass() is "permanent" or "validation" (the
// message's fault, not the downstream's) and context cancellations. The
// controller runs inside handler calls: it has no goroutine, and without
// traffic the limit does not move.
type Adaptive struct {
	// Min and Max bound the rate (events per second); 0 < Min <= Max,
	// both finite. Required.
	Min, Max float64
	// TargetLatency is the mean handler latency above which the
	// downstream counts as congested. Zero ignores latency.
	TargetLatency time.Duration
	// MaxErrorRate is the failure share (0..1) above which the downstream
	// counts as congested. Zero means DefaultMaxErrorRate; 1 ignores
	// errors.
	MaxErrorRate float64
	// Interval is the control window. Zero means DefaultAdaptiveInterval.
	Interval time.Duration
	// Increase is the rate added after a healthy, limiter-bound window.
	// Zero means Max/50.
	Increase float64
	// Decrease is the factor (0 < Decrease < 1) applied after a congested
	// window. Zero means DefaultDecrease.
	Decrease float64
	// MinSamples is the number of finished messages a window needs before
	// it is judged; a window stays open until it has them. Zero means
	// DefaultMinSamples.
	MinSamples int
}

// Adaptive defaults.
const (
	DefaultMaxErrorRate     = 0.05
	DefaultAdaptiveInterval = 250 * time.Millisecond
	DefaultDecrease         = 0.8
	DefaultMinSamples       = 20
)

// WithAdaptive makes the limiter's own rate (WithRate) adaptive. The
// initial rate is WithRate's, which must lie within [a.Min, a.Max]; without
// WithRate it starts at a.Max. SetRate still works: the controller carries
// on from the rate it sets. Invalid settings make New fail with ErrInvalid.
func WithAdaptive(a Adaptive) Option {
	return optionFunc(func(c *config) { c.adaptive = &a })
}

func (a Adaptive) withDefaults() Adaptive {
	if a.MaxErrorRate == 0 {
		a.MaxErrorRate = DefaultMaxErrorRate
	}
	if a.Interval == 0 {
		a.Interval = DefaultAdaptiveInterval
	}
	if a.Increase == 0 {
		a.Increase = a.Max / 50
	}
	if a.Decrease == 0 {
		a.Decrease = DefaultDecrease
	}
	if a.MinSamples == 0 {
		a.MinSamples = DefaultMinSamples
	}
	return a
}

func (a Adaptive) validate(c *config) error {
	switch {
	case checkRate("adaptive.min", a.Min) != nil:
		return checkRate("adaptive.min", a.Min)
	case checkRate("adaptive.max", a.Max) != nil:
		return checkRate("adaptive.max", a.Max)
	case a.Min <= 0:
		return invalidf("adaptive.min must be above 0", a.Min)
	case a.Max < a.Min:
		return invalidf("adaptive.max must be at least adaptive.min", a.Max)
	case a.TargetLatency < 0:
		return invalidf("adaptive.target_latency must not be negative", a.TargetLatency.Seconds())
	case math.IsNaN(a.MaxErrorRate) || a.MaxErrorRate < 0 || a.MaxErrorRate > 1:
		return invalidf("adaptive.max_error_rate must be within 0..1", a.MaxErrorRate)
	case a.Interval < 0:
		return invalidf("adaptive.interval must not be negative", a.Interval.Seconds())
	case math.IsNaN(a.Increase) || math.IsInf(a.Increase, 0) || a.Increase < 0:
		return invalidf("adaptive.increase must be a finite rate, 0 or more", a.Increase)
	case math.IsNaN(a.Decrease) || a.Decrease < 0 || a.Decrease >= 1:
		return invalidf("adaptive.decrease must be within 0 (default) and 1 (exclusive)", a.Decrease)
	case a.MinSamples < 0:
		return invalidf("adaptive.min_samples must not be negative", float64(a.MinSamples))
	case c.rateSet && (c.rate < a.Min || c.rate > a.Max):
		return invalidf("rate must lie within adaptive.min and adaptive.max", c.rate)
	}
	return nil
}

// adaptive is the controller state of one Limiter.
type adaptive struct {
	cfg Adaptive
	b   *bucket

	mu          sync.Mutex
	windowStart time.Time // guarded by mu
	grantedAt   uint64    // bucket.granted at windowStart; guarded by mu
	n, errs     int       // guarded by mu
	latSum      time.Duration
}

func newAdaptive(a Adaptive, b *bucket) *adaptive {
	return &adaptive{cfg: a.withDefaults(), b: b, windowStart: time.Now()}
}

// failed reports whether err counts against the downstream's health.
func failed(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var c interface{ ErrorClass() string }
	if errors.As(err, &c) {
		switch c.ErrorClass() {
		case "permanent", "validation":
			return false
		}
	}
	return true
}

// decision is one change of the adaptive rate.
type decision struct {
	old, rate float64
	increase  bool
}

// observe records one finished message and, at the end of a window,
// adjusts the bucket's rate. It returns the change, if any, so the caller
// can record it outside the lock.
func (a *adaptive) observe(lat time.Duration, bad bool, now time.Time) (decision, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	a.latSum += lat
	if bad {
		a.errs++
	}
	elapsed := now.Sub(a.windowStart)
	if elapsed < a.cfg.Interval || a.n < a.cfg.MinSamples {
		return decision{}, false
	}
	n, errs, meanLat := a.n, a.errs, a.latSum/time.Duration(a.n)
	a.n, a.errs, a.latSum = 0, 0, 0
	a.windowStart = now

	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	granted := b.granted - a.grantedAt
	a.grantedAt = b.granted
	if b.unlimited || b.closed {
		return decision{}, false
	}
	rate := b.rate
	nr := rate
	secs := elapsed.Seconds()
	congested := float64(errs) > a.cfg.MaxErrorRate*float64(n) ||
		(a.cfg.TargetLatency > 0 && meanLat > a.cfg.TargetLatency)
	switch {
	case congested:
		nr = rate * a.cfg.Decrease
		if goodput := float64(n-errs) / secs; goodput < nr {
			nr = goodput
		}
	case float64(granted) >= 0.9*rate*secs:
		nr = rate + a.cfg.Increase
	}
	nr = math.Min(math.Max(nr, a.cfg.Min), a.cfg.Max)
	if nr == rate {
		return decision{}, false
	}
	now2 := b.nowLocked()
	b.setLocked(now2, false, nr, b.burst)
	if b.head != nil {
		b.releaseLocked(now2)
	}
	b.armLocked(now2)
	return decision{old: rate, rate: nr, increase: nr > rate}, true
}
