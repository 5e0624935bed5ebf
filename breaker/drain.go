package breaker

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levee-dev/levee/internal/gcra"
)

// rampLimiter is what the drain needs from a token bucket; the breaker owns
// one *gcra.Bucket and moves its rate along the ramp.
type rampLimiter interface {
	Take(ctx context.Context) error
	// Wait is Take with the bucket's result, whose Wait is the expected
	// wait (ns) when the slot comes after ctx's deadline.
	Wait(ctx context.Context, maxWait float64) (gcra.Grant, gcra.Result)
	SetRate(perSecond float64)
	Close()
}

// RampFraction returns the share of full throughput admitted elapsed into a
// drain of window: max(start, (elapsed/window)^(1/aggression)), and 1 from
// window on. It is the schedule the drain follows (Envoy's slow start).
func RampFraction(elapsed, window time.Duration, start, aggression float64) float64 {
	if window <= 0 || elapsed >= window {
		return 1
	}
	if elapsed < 0 {
		elapsed = 0
	}
	f := math.Pow(float64(elapsed)/float64(window), 1/aggression)
	return math.Max(start, f)
}

// drainState is guarded by Breaker.mu.
type drainState struct {
	active   bool
	cycle    uint64 // drains started so far
	start    time.Time
	baseline float64     // messages per second that count as 100%
	rate     float64     // rate last set on the limiter
	stepped  time.Time   // when the rate last moved along the ramp
	timer    *time.Timer // ends the drain at the end of the window
	closed   bool        // the Breaker was closed: no more ticks
}

// rampTick returns the least time between two moves of the drain's rate
// along the ramp: a hundredth of the window, between 10ms and 1s. The rate
// moves when a message is about to wait for the drain and when the drain's
// bucket wakes to admit, never on a timer of its own: a drain that admits
// nothing wakes nothing (but once, at the end of its window).
func rampTick(window time.Duration) time.Duration {
	return min(max(window/100, 10*time.Millisecond), time.Second)
}

// startDrainLocked begins a drain cycle at now, if a drain is configured and
// a baseline is known; otherwise it resumes throughput tracking.
func (b *Breaker) startDrainLocked(now time.Time) {
	if !b.cfg.drain {
		return
	}
	base := b.cfg.drainRate
	if base == 0 {
		base = b.drain.baseline
	}
	if base <= 0 {
		b.tp.restart(now)
		return
	}
	b.drain.active, b.drain.start, b.drain.baseline = true, now, base
	b.drain.cycle++
	b.drain.stepped = now
	b.setRateLocked(base * b.cfg.drainStart)
	if b.drain.timer == nil {
		b.drain.timer = time.AfterFunc(b.cfg.drainWindow, b.rampTimer)
	} else {
		b.drain.timer.Reset(b.cfg.drainWindow)
	}
}

func (b *Breaker) setRateLocked(r float64) {
	if r != b.drain.rate {
		b.lim.SetRate(r)
		b.drain.rate = r
	}
}

// endDrainLocked ends a drain: the limiter stops limiting, so messages
// queued in it go on at once.
func (b *Breaker) endDrainLocked() {
	b.drain.active = false
	if b.drain.timer != nil {
		b.drain.timer.Stop()
	}
	b.setRateLocked(math.Inf(1))
}

// rampTimer ends the drain at the end of the window (or, woken early,
// waits for the rest of it).
func (b *Breaker) rampTimer() {
	now := time.Now()
	b.mu.Lock()
	defer b.unlock()
	if !b.drain.active || b.drain.closed {
		return
	}
	if b.rampLocked(now) {
		b.drain.timer.Reset(max(b.cfg.drainWindow-now.Sub(b.drain.start), time.Millisecond))
	}
}

// rampWake is the drain bucket's wake hook: when the bucket wakes to admit,
// the rate of the messages still queued in it follows the ramp.
func (b *Breaker) rampWake() {
	now := time.Now()
	b.mu.Lock()
	defer b.unlock()
	if b.drain.active && !b.drain.closed {
		b.stepLocked(now)
	}
}

// stepLocked moves the rate along the ramp when rampTick passed since it
// last moved (changing it more often would reschedule the bucket's queue
// far more often than the ramp needs), and ends the drain at the end of
// the window; it reports whether the drain still runs.
func (b *Breaker) stepLocked(now time.Time) bool {
	if now.Sub(b.drain.start) < b.cfg.drainWindow && now.Sub(b.drain.stepped) < rampTick(b.cfg.drainWindow) {
		return true
	}
	b.drain.stepped = now
	return b.rampLocked(now)
}

// rampLocked sets the rate due at now; at the end of the window it ends the
// drain and returns false.
func (b *Breaker) rampLocked(now time.Time) bool {
	elapsed := now.Sub(b.drain.start)
	if elapsed >= b.cfg.drainWindow {
		b.endDrainLocked()
		if b.tp != nil {
			b.tp.restart(now)
		}
		return false
	}
	b.setRateLocked(b.drain.baseline * RampFraction(elapsed, b.cfg.drainWindow, b.cfg.drainStart, b.cfg.drainAggression))
	return true
}

// closeDrain stops the ramp's timer for good.
func (b *Breaker) closeDrain() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drain.closed = true
	if b.drain.timer != nil {
		b.drain.timer.Stop()
	}
}

// stopDrainLocked ends the drain (a trip or a forced state). When the trip
// comes from a fully closed breaker, the throughput observed so far becomes
// the baseline of the next drain; a trip during a drain keeps the earlier
// baseline, since throughput was held down by the ramp.
func (b *Breaker) stopDrainLocked(now time.Time, fromClosed bool) {
	if !b.cfg.drain {
		return
	}
	wasActive := b.drain.active
	if wasActive {
		b.endDrainLocked()
	}
	if fromClosed && !wasActive && b.tp != nil {
		if r := b.tp.fold(now); r > 0 {
			b.drain.baseline = r
		}
	}
}

// rampStep returns the limiter to wait on, its current rate and the drain
// cycle, or nil when no drain is running (any more) or the message already
// waited in this cycle (done). It moves the rate along the ramp first (see
// stepLocked).
func (b *Breaker) rampStep(now time.Time, done uint64) (rampLimiter, float64, uint64) {
	b.mu.Lock()
	defer b.unlock()
	if !b.drain.active || b.drain.cycle == done {
		return nil, 0, done
	}
	if !b.stepLocked(now) {
		return nil, 0, done // the window is over: the drain ended
	}
	return b.lim, b.drain.rate, b.drain.cycle
}

// DrainProgress returns the current ramp fraction (between the drain's start
// and 1), or 1 when no drain is running.
func (b *Breaker) DrainProgress() float64 {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.drain.active {
		return 1
	}
	return RampFraction(now.Sub(b.drain.start), b.cfg.drainWindow, b.cfg.drainStart, b.cfg.drainAggression)
}

// Baseline returns the throughput (messages per second) that counts as 100%
// in the drain: the configured rate, or the throughput observed before the
// last trip from a fully closed state (0 before any).
func (b *Breaker) Baseline() float64 {
	if b.cfg.drainRate > 0 {
		return b.cfg.drainRate
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.drain.baseline
}

// throughputTau is the time constant of the moving average of throughput.
const throughputTau = 10 * time.Second

// foldEvery is how many successes are counted between two folds into the
// moving average: the success path reads the clock only that often.
const foldEvery = 64

// throughput is an exponentially weighted moving average of successful
// calls per second while fully closed.
type throughput struct {
	n    atomic.Uint64
	mu   sync.Mutex
	last time.Time // guarded by mu
	ewma float64   // guarded by mu
	seen bool      // guarded by mu
}

func newThroughput() *throughput { return &throughput{} }

// add counts one success.
func (t *throughput) add() {
	if t.n.Add(1)%foldEvery == 0 {
		t.fold(time.Now())
	}
}

// restart forgets the count since the last fold (a pause in which nothing
// was measured) without touching the average.
func (t *throughput) restart(now time.Time) {
	t.mu.Lock()
	t.n.Store(0)
	t.last = now
	t.mu.Unlock()
}

// fold adds the count since the last fold to the average and returns it.
func (t *throughput) fold(now time.Time) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	dt := now.Sub(t.last)
	if dt <= 0 {
		return t.ewma
	}
	n := t.n.Swap(0)
	r := float64(n) / dt.Seconds()
	t.last = now
	if !t.seen {
		t.ewma, t.seen = r, n > 0
		return t.ewma
	}
	alpha := 1 - math.Exp(-float64(dt)/float64(throughputTau))
	t.ewma += alpha * (r - t.ewma)
	return t.ewma
}
