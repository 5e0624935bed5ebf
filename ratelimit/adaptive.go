package ratelimit

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/gcra"
)

// Adaptive configures a limit that follows the downstream's health (AIMD
// with a goodput-aware decrease). Every Interval the limiter looks at the
// messages its handler finished in that window:
//
//   - congested, when the share of failed messages is above MaxErrorRate or
//     the mean handler latency is above the latency target (TargetLatency,
//     or by default LatencyTolerance times the baseline: the lowest recent
//     window mean of successful calls, which ages upwards by 1% per
//     window so that a lasting change of the downstream's own latency is
//     followed): the rate drops to
//     min(rate, goodput)*Decrease, where goodput is the rate of successful
//     completions in the window (what the downstream actually delivered),
//     so one decision brings the rate under the new capacity and the
//     backlog drains; when the window was congested by latency alone and
//     fewer than one call was in flight on average (a quiet period held
//     the window open for samples, so goodput was the demand, not the
//     capacity) the rate drops to rate*Decrease; while latency stays above target but falls window
//     after window after a cut, the rate holds (the backlog is draining)
//     instead of being cut again;
//   - healthy and limiter-bound (at least 90% of the window's permits were
//     used, a deferred message's permit not counted): the rate grows by
//     Increase;
//   - otherwise it stays, so a quiet period does not inflate the limit.
//
// The rate always stays within [Min, Max]. Failures are handler errors
// except those whose ErrorClass() is "permanent" or "validation" (the
// message's fault, not the downstream's) and context cancellations; a
// deferral (levee.Deferral: the handler declined to run the message) is
// neither: not a sample, and its permit does not count as used. The
// controller runs inside handler calls: it has no goroutine, and without
// traffic the limit does not move.
type Adaptive struct {
	// Min and Max bound the rate (events per second); 0 < Min <= Max,
	// both finite. Required.
	Min, Max float64
	// TargetLatency is the mean handler latency above which the
	// downstream counts as congested. Zero means automatic:
	// LatencyTolerance times the baseline latency.
	TargetLatency time.Duration
	// LatencyTolerance is the automatic target as a multiple of the
	// baseline latency; above 1. Zero means DefaultLatencyTolerance.
	LatencyTolerance float64
	// IgnoreLatency judges the downstream by errors only. Reacting only
	// once the downstream fails costs more errors (docs/BENCHMARKS.md).
	IgnoreLatency bool
	// MaxErrorRate is the failure share (0..1) above which the downstream
	// counts as congested. Zero means DefaultMaxErrorRate; 1 ignores
	// errors.
	MaxErrorRate float64
	// Interval is the control window. Zero means DefaultAdaptiveInterval.
	Interval time.Duration
	// Increase is the rate added after a healthy, limiter-bound window.
	// Zero means Max/100.
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
	DefaultLatencyTolerance = 2.0
)

// baselineAging is how fast the automatic baseline latency rises per
// window when no lower window is seen.
const baselineAging = 1.01

// WithAdaptive makes the limiter's own rate (WithRate) adaptive. The
// initial rate is WithRate's, which must lie within [a.Min, a.Max]; without
// WithRate it starts at a.Max. SetRate still works: the controller carries
// on from the rate it sets. Invalid settings make New fail with ErrInvalidConfig.
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
		a.Increase = a.Max / 100
	}
	if a.Decrease == 0 {
		a.Decrease = DefaultDecrease
	}
	if a.MinSamples == 0 {
		a.MinSamples = DefaultMinSamples
	}
	if a.LatencyTolerance == 0 {
		a.LatencyTolerance = DefaultLatencyTolerance
	}
	return a
}

func (a Adaptive) validate(c *config) error {
	if err := checkRate("adaptive.min", a.Min); err != nil {
		return err
	}
	if err := checkRate("adaptive.max", a.Max); err != nil {
		return err
	}
	switch {
	case a.Min <= 0:
		return invalid("adaptive.min", "must be above 0", a.Min)
	case a.Max < a.Min:
		return invalid("adaptive.max", "must be at least adaptive.min", a.Max)
	case a.TargetLatency < 0:
		return invalid("adaptive.target_latency", "must not be negative", a.TargetLatency)
	case math.IsNaN(a.MaxErrorRate) || a.MaxErrorRate < 0 || a.MaxErrorRate > 1:
		return invalid("adaptive.max_error_rate", "must be within 0 and 1 (100%)", a.MaxErrorRate)
	case a.Interval < 0:
		return invalid("adaptive.interval", "must not be negative", a.Interval)
	case math.IsNaN(a.Increase) || math.IsInf(a.Increase, 0) || a.Increase < 0:
		return invalid("adaptive.increase", "must be a finite rate, 0 or more", a.Increase)
	case math.IsNaN(a.Decrease) || a.Decrease < 0 || a.Decrease >= 1:
		return invalid("adaptive.decrease", "must be 0 (default) or within 0 and 1, exclusive", a.Decrease)
	case math.IsNaN(a.LatencyTolerance) || math.IsInf(a.LatencyTolerance, 0) || (a.LatencyTolerance != 0 && a.LatencyTolerance <= 1):
		return invalid("adaptive.latency_tolerance", "must be 0 (default) or a finite number above 1", a.LatencyTolerance)
	case a.IgnoreLatency && a.TargetLatency > 0:
		return invalid("adaptive.target_latency", "cannot be set with ignore_latency", a.TargetLatency)
	case a.MinSamples < 0:
		return invalid("adaptive.min_samples", "must not be negative", a.MinSamples)
	case c.rateSet && (c.rate < a.Min || c.rate > a.Max):
		return invalid("rate", "must lie within adaptive.min and adaptive.max", c.rate)
	}
	return nil
}

// adaptive is the controller state of one Limiter.
type adaptive struct {
	cfg      Adaptive
	b        *gcra.Bucket
	inflight atomic.Int64 // messages inside next

	mu          sync.Mutex
	windowStart time.Time     // guarded by mu
	grantedAt   uint64        // bucket.granted at windowStart; guarded by mu
	n, errs     int           // guarded by mu
	deferred    uint64        // permits of deferred messages in the window; guarded by mu
	latSum      time.Duration // guarded by mu
	okLatSum    time.Duration // latency of the window's successful calls; guarded by mu
	maxLat      time.Duration // guarded by mu
	backingOff  bool          // since the last cut, no healthy window; guarded by mu
	holdUntil   time.Time     // no latency cut before; guarded by mu
	latAtCut    time.Duration // mean latency at the last cut or hold; guarded by mu
	baseline    time.Duration // automatic baseline latency; guarded by mu
}

func newAdaptive(a Adaptive, b *gcra.Bucket) *adaptive {
	return &adaptive{cfg: a.withDefaults(), b: b, windowStart: time.Now()}
}

// reset starts a new window (after SetRate: old samples judged the old
// rate).
func (a *adaptive) reset(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n, a.errs, a.latSum, a.okLatSum, a.maxLat, a.deferred = 0, 0, 0, 0, 0, 0
	a.windowStart = now
	a.grantedAt = a.b.Snapshot().Granted
}

// deferredCall records a message that took a permit and was deferred
// behind the limiter: the downstream did no work for that permit, so the
// window's permits used (the limiter-bound test) leave it out.
func (a *adaptive) deferredCall() {
	a.mu.Lock()
	a.deferred++
	a.mu.Unlock()
}

// failed reports whether err counts against the downstream's health.
func failed(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	switch levee.ClassOf(err) {
	case levee.ClassPermanent, levee.ClassValidation:
		return false
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
// can record it outside the lock. It is past 80 lines because one window's
// decision (latency or error target, probe up, back off, floor and
// ceiling) is a single sequence of steps over the window's counters.
func (a *adaptive) observe(lat time.Duration, bad bool, now time.Time) (decision, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	a.latSum += lat
	a.maxLat = max(a.maxLat, lat)
	if bad {
		a.errs++
	} else {
		a.okLatSum += lat
	}
	elapsed := now.Sub(a.windowStart)
	if elapsed < a.cfg.Interval || a.n < a.cfg.MinSamples {
		return decision{}, false
	}
	n, errs, meanLat, maxLat, deferred := a.n, a.errs, a.latSum/time.Duration(a.n), a.maxLat, a.deferred
	var okLat time.Duration // mean latency of the successful calls; 0 for none
	if n > errs {
		okLat = a.okLatSum / time.Duration(n-errs)
	}
	// Little's law: the mean number of calls in flight over the window.
	// Below 1 the downstream was idle most of the window (a quiet period
	// held the window open for samples), so what it delivered is the
	// demand, not its capacity.
	busy := float64(a.latSum) / float64(elapsed)
	a.n, a.errs, a.latSum, a.okLatSum, a.maxLat, a.deferred = 0, 0, 0, 0, 0, 0
	a.windowStart = now

	// The decision reads and moves the bucket's rate in one step, under its
	// lock (gcra.Bucket.Update), so no concurrent SetRate slips in between.
	var (
		d       decision
		changed bool
	)
	a.b.Update(func(s *gcra.State) bool {
		// Permits used: granted in the window, less those of deferred
		// messages (backpressure: not a sign that the limit holds back
		// work the downstream does).
		granted := s.Granted - a.grantedAt
		a.grantedAt = s.Granted
		granted -= min(granted, deferred)
		if s.Unlimited || s.Closed {
			return false
		}
		rate := s.Rate
		nr := rate
		secs := elapsed.Seconds()
		errCongested := float64(errs) > a.cfg.MaxErrorRate*float64(n)
		latCongested := false
		switch {
		case a.cfg.IgnoreLatency:
		case a.cfg.TargetLatency > 0:
			latCongested = meanLat > a.cfg.TargetLatency
		default:
			// The baseline is the downstream's healthy latency: it
			// learns from successful calls only. Failures that come back
			// at once (connection refused, an open breaker further in)
			// would otherwise set it far below the healthy latency and,
			// after the outage, every window would look congested until
			// the 1% aging caught up (minutes at Min).
			switch {
			case okLat == 0:
			case a.baseline == 0 || okLat < a.baseline:
				a.baseline = okLat
			default:
				a.baseline = time.Duration(float64(a.baseline) * baselineAging)
			}
			// no baseline before the first success: errors judge alone
			latCongested = a.baseline > 0 && float64(meanLat) > a.cfg.LatencyTolerance*float64(a.baseline)
		}
		// After a cut, its effect shows only once the requests admitted
		// before it have finished (one latency later), and then as latency
		// falling while the backlog drains: hold instead of cutting again, so
		// the rate does not overshoot downwards.
		draining := a.backingOff && (now.Before(a.holdUntil) || meanLat < a.latAtCut)
		switch {
		case errCongested || (latCongested && !draining):
			// Cut below what the downstream delivered, so its backlog drains;
			// when it was mostly idle and only slow, by Decrease alone.
			goodput := float64(n-errs) / secs
			if errCongested || busy >= 1 {
				nr = math.Min(rate, goodput) * a.cfg.Decrease
			} else {
				nr = rate * a.cfg.Decrease
			}
			a.backingOff = true
			// Little's law: the messages in flight now finish in about
			// inflight/goodput; until then, and for one more window to
			// measure, latency reflects the old rate.
			hold := maxLat
			if goodput > 0 {
				hold = max(hold, time.Duration(float64(a.inflight.Load())/goodput*float64(time.Second)))
			}
			a.holdUntil = now.Add(hold + a.cfg.Interval)
			a.latAtCut = meanLat
		case latCongested:
			if !now.Before(a.holdUntil) {
				a.latAtCut = meanLat
			}
		case float64(granted) >= 0.9*rate*secs:
			nr = rate + a.cfg.Increase
			a.backingOff = false
		default:
			a.backingOff = false
		}
		nr = math.Min(math.Max(nr, a.cfg.Min), a.cfg.Max)
		if nr == rate {
			return false
		}
		s.Rate = nr
		d, changed = decision{old: rate, rate: nr, increase: nr > rate}, true
		return true
	})
	return d, changed
}
