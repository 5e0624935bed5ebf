package breaker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/sony/gobreaker/v2"

	"github.com/levee-dev/levee"
)

// wakeSlack is added to the end of the open period before a waiter asks
// gobreaker for its state: gobreaker turns half-open only once its expiry
// is strictly in the past.
const wakeSlack = time.Microsecond

// Breaker is a circuit breaker for Watermill handlers. Messages wait while
// it is open instead of failing; after recovery admitted throughput ramps up
// (when a drain is configured). One Breaker may be shared by several
// handlers: they then trip, wait and drain together. A Breaker is safe for
// concurrent use. Close it to release waiting messages and its telemetry.
type Breaker struct {
	cfg  config
	cb   *gobreaker.CircuitBreaker[[]*message.Message]
	slow *slowWindow // nil unless a slow-call ratio is configured
	ok   *okWindow   // nil unless a failure ratio is configured (without a slow-call ratio)
	tp   *throughput // nil when the drain is off or its rate configured
	lim  rampLimiter // nil when the drain is off
	inst *instruments

	force    atomic.Int32  // Force
	gbState  atomic.Int32  // mirror of gobreaker's state (State), written under mu
	pending  atomic.Bool   // transitions wait for delivery to the hooks
	gen      atomic.Uint64 // state changes so far, written under gobreaker's lock
	streak   atomic.Bool   // gobreaker's ConsecutiveFailures > 0, written under its lock
	fastOK   bool          // no slow-call ratio: see fast
	draining atomic.Bool   // mirror of drain.active, written under mu

	closeOnce sync.Once
	closed    chan struct{}

	mu         sync.Mutex
	eff        State         // guarded by mu: effective state last reported
	changed    chan struct{} // guarded by mu: closed and replaced on every change
	openUntil  time.Time     // guarded by mu: when gobreaker turns half-open
	events     []transition  // guarded by mu: transitions not yet delivered
	spare      []transition  // guarded by mu: recycled event buffer
	delivering bool          // guarded by mu: a goroutine is running the hooks
	drain      drainState    // guarded by mu
}

type transition struct {
	from, to State
}

// New returns a Breaker configured by opts. An invalid setting returns an
// error wrapping ErrInvalidConfig that names the setting.
func New(opts ...Option) (*Breaker, error) {
	cfg, err := newConfig(opts...)
	if err != nil {
		return nil, err
	}
	b := &Breaker{cfg: cfg, closed: make(chan struct{}), changed: make(chan struct{})}
	b.fastOK = cfg.slowRatio == 0
	if b.fastOK && cfg.failureRatio > 0 {
		b.ok = newOKWindow(cfg.window/rollingBuckets, rollingBuckets)
	}
	if cfg.slowRatio > 0 {
		b.slow = newSlowWindow(cfg.window/rollingBuckets, rollingBuckets)
	}
	if cfg.drain {
		lim, err := newRampLimiter()
		if err != nil {
			return nil, err
		}
		b.lim = lim
		if cfg.drainRate == 0 {
			b.tp = newThroughput()
		}
	}
	b.cb = gobreaker.NewCircuitBreaker[[]*message.Message](gobreaker.Settings{
		Name:          cfg.name,
		MaxRequests:   uint32(cfg.probes),
		Interval:      cfg.window,
		BucketPeriod:  cfg.window / rollingBuckets,
		Timeout:       cfg.openFor,
		ReadyToTrip:   b.readyToTrip,
		OnStateChange: b.onStateChange,
		IsSuccessful:  b.gbIsSuccessful,
		IsExcluded:    b.isExcluded,
	})
	now := time.Now()
	if b.slow != nil {
		b.slow.reset(now)
	}
	if b.ok != nil {
		b.ok.reset(b.ok.now())
	}
	if b.tp != nil {
		b.tp.restart(now)
	}
	inst, err := newInstruments(b)
	if err != nil {
		if b.lim != nil {
			b.lim.Close()
		}
		return nil, err
	}
	b.inst = inst
	return b, nil
}

// State returns the state messages see now: the forced state when forced,
// otherwise gobreaker's (an open breaker whose open period has passed
// reports half-open).
func (b *Breaker) State() State {
	switch Force(b.force.Load()) {
	case ForceOpen:
		return StateOpen
	case ForceClosed:
		return StateClosed
	}
	s := fromGobreaker(b.cb.State())
	b.flush()
	return s
}

// Counts returns gobreaker's counts of the current window (or of the
// current half-open trial). While closed, a success that follows a success
// is not reported to gobreaker (it cannot change the state by itself).
// With a failure ratio (and no slow-call ratio) such successes are counted
// in a window of Levee's own and included in Requests and TotalSuccesses
// here and in the trip decision; with only consecutive failures they are
// not counted, so Requests and TotalSuccesses undercount. Failures and
// ConsecutiveFailures are exact; ConsecutiveSuccesses undercounts.
func (b *Breaker) Counts() gobreaker.Counts {
	c := b.cb.Counts()
	if b.ok != nil && b.gbState.Load() == int32(StateClosed) {
		n := b.ok.count(b.ok.now())
		c.Requests += n
		c.TotalSuccesses += n
	}
	return c
}

// Forced returns the current override.
func (b *Breaker) Forced() Force { return Force(b.force.Load()) }

// ForceOpen makes every message wait, whatever the counts, until
// ClearForce or ForceClosed: the operator's kill switch. Waiting messages
// are still bounded by the max hold.
func (b *Breaker) ForceOpen() { b.setForce(ForceOpen) }

// ForceClosed lets every message through uncounted and without a drain,
// whatever the counts, until ClearForce or ForceOpen.
func (b *Breaker) ForceClosed() { b.setForce(ForceClosed) }

// ClearForce returns the breaker to its counts. Leaving ForceOpen for a
// closed state starts a drain, as a recovery does.
func (b *Breaker) ClearForce() { b.setForce(ForceNone) }

func (b *Breaker) setForce(f Force) {
	if f == ForceNone {
		// Bring gobreaker's lazy open -> half-open transition up to date
		// first (outside mu: gobreaker calls onStateChange under its lock).
		b.cb.State()
	}
	b.mu.Lock()
	b.force.Store(int32(f))
	b.reconcileLocked(time.Now())
	b.mu.Unlock()
	b.flush()
}

// Close releases every waiting message (open, half-open or drain waits)
// with ErrClosed, stops the drain's limiter and unregisters the metric
// callbacks. Afterwards messages still pass while the breaker is closed and
// get ErrClosed instead of waiting. Close is idempotent; it returns the
// error of unregistering the callbacks, if any.
func (b *Breaker) Close() error {
	var err error
	b.closeOnce.Do(func() {
		close(b.closed)
		if b.lim != nil {
			b.closeDrain()
			b.lim.Close()
		}
		err = b.inst.close()
	})
	return err
}

// onStateChange is gobreaker's hook. It runs under gobreaker's lock: it must
// never call the gobreaker breaker; it only updates the Breaker's own state
// and queues the transition for the user hooks (see flush).
func (b *Breaker) onStateChange(_ string, _, to gobreaker.State) {
	now := time.Now()
	b.gen.Add(1)
	b.streak.Store(false)
	b.mu.Lock()
	b.gbState.Store(int32(fromGobreaker(to)))
	if to == gobreaker.StateOpen {
		b.openUntil = now.Add(b.cfg.openFor)
	}
	if b.slow != nil {
		b.slow.reset(now)
	}
	if b.ok != nil {
		b.ok.reset(b.ok.now())
	}
	b.reconcileLocked(now)
	b.mu.Unlock()
}

func (b *Breaker) effectiveLocked() State {
	switch Force(b.force.Load()) {
	case ForceOpen:
		return StateOpen
	case ForceClosed:
		return StateClosed
	}
	return State(b.gbState.Load())
}

// reconcileLocked records a change of the effective state: it queues the
// transition, wakes waiters and starts or stops the drain.
func (b *Breaker) reconcileLocked(now time.Time) {
	to := b.effectiveLocked()
	from := b.eff
	if to == from {
		return
	}
	b.eff = to
	b.events = append(b.events, transition{from: from, to: to})
	b.pending.Store(true)
	b.wakeLocked()
	switch to {
	case StateOpen:
		b.stopDrainLocked(now, from == StateClosed)
	case StateClosed:
		if Force(b.force.Load()) == ForceClosed {
			b.stopDrainLocked(now, false)
		} else {
			b.startDrainLocked(now)
		}
	}
}

// wakeLocked wakes every waiting message so it looks at the state again.
func (b *Breaker) wakeLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *Breaker) wake() {
	b.mu.Lock()
	b.wakeLocked()
	b.mu.Unlock()
}

// flush delivers queued transitions to the hooks, outside any lock and in
// order; one goroutine delivers at a time, the others return at once.
func (b *Breaker) flush() {
	if !b.pending.Load() {
		return
	}
	for {
		b.mu.Lock()
		if b.delivering || len(b.events) == 0 {
			b.mu.Unlock()
			return
		}
		evs := b.events
		b.events = b.spare[:0]
		b.pending.Store(false)
		b.delivering = true
		b.mu.Unlock()

		for _, e := range evs {
			b.deliver(e)
		}

		b.mu.Lock()
		b.spare = evs[:0]
		b.delivering = false
		b.mu.Unlock()
	}
}

func (b *Breaker) deliver(e transition) {
	b.cfg.logger.Info("levee/breaker: state change", watermill.LogFields{
		"breaker": b.cfg.name, "from": e.from.String(), "to": e.to.String(),
	})
	b.inst.transition(e.from, e.to)
	for _, fn := range b.cfg.onChange {
		fn(e.from, e.to)
	}
}

// isExcluded: context.Canceled, deferrals (a layer further in declined to
// run the handler: levee.Deferral), permanent and validation errors are not
// the downstream's fault and count neither way.
func (b *Breaker) isExcluded(err error) bool {
	if err == nil || err == errSlowCall || err == errHandlerPanic {
		return false
	}
	if err == errStale {
		return true
	}
	if errors.Is(err, context.Canceled) || levee.IsDeferral(err) {
		return true
	}
	switch levee.ClassOf(err) {
	case levee.ClassPermanent, levee.ClassValidation:
		return true
	}
	return b.cfg.isExcluded != nil && b.cfg.isExcluded(err)
}

func (b *Breaker) isSuccessful(err error) bool {
	return err == nil || (err != errSlowCall && err != errHandlerPanic && b.cfg.isSuccessful != nil && b.cfg.isSuccessful(err))
}

// gbIsSuccessful is gobreaker's IsSuccessful. It also maintains streak:
// gobreaker calls it under its lock for every counted outcome, and a
// success resets ConsecutiveFailures.
func (b *Breaker) gbIsSuccessful(err error) bool {
	ok := b.isSuccessful(err)
	if ok {
		b.streak.Store(false)
	}
	return ok
}

// readyToTrip runs under gobreaker's lock after a failure while closed.
func (b *Breaker) readyToTrip(c gobreaker.Counts) bool {
	b.streak.Store(true)
	cfg := &b.cfg
	if cfg.consecutiveFailures > 0 && c.ConsecutiveFailures >= uint32(cfg.consecutiveFailures) {
		return true
	}
	completed := c.TotalSuccesses + c.TotalFailures
	if b.ok != nil {
		completed += b.ok.count(b.ok.now())
	}
	if completed < uint32(cfg.minRequests) || completed == 0 {
		return false
	}
	if cfg.failureRatio > 0 && float64(c.TotalFailures)/float64(completed) >= cfg.failureRatio {
		return true
	}
	if b.slow != nil {
		slow := b.slow.count(time.Now())
		if float64(slow)/float64(completed) >= cfg.slowRatio {
			return true
		}
	}
	return false
}
