package breaker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/levee-dev/levee"
)

// wakeSlack is added to the end of the open period before a waiter looks
// at the state again: the breaker turns half-open only once its expiry is
// strictly in the past.
const wakeSlack = time.Microsecond

// Breaker is a circuit breaker for Watermill handlers. Messages wait while
// it is open instead of failing; after recovery admitted throughput ramps up
// (when a drain is configured). One Breaker may be shared by several
// handlers: they then trip, wait and drain together. A Breaker is safe for
// concurrent use. Close it to release waiting messages and its telemetry.
type Breaker struct {
	cfg    config
	slow   *slowWindow // guarded by mu; nil unless a slow-call ratio is configured
	ok     *okWindow   // nil unless a failure ratio is configured (without a slow-call ratio)
	tp     *throughput // nil when the drain is off or its rate configured
	lim    rampLimiter // nil when the drain is off
	inst   *instruments
	fastOK bool // no slow-call ratio: see fast

	// word is the published snapshot of the state guarded by mu (machine
	// state, generation, failure streak, force, drain, pending events; see
	// the word* bits), stored only by unlock. The success path reads it
	// instead of taking mu.
	word atomic.Uint64

	closeOnce sync.Once
	closed    chan struct{}

	mu         sync.Mutex
	m          machine       // guarded by mu: the state
	force      Force         // guarded by mu
	eff        State         // guarded by mu: effective state last reported
	changed    chan struct{} // guarded by mu: closed and replaced on every change
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
		lim, err := newRampLimiter(b.rampWake)
		if err != nil {
			return nil, err
		}
		b.lim = lim
		if cfg.drainRate == 0 {
			b.tp = newThroughput()
		}
	}
	now := time.Now()
	b.m = newMachine(cfg.window, cfg.openFor, uint32(cfg.probes), now)
	b.mu.Lock()
	b.unlock()
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
// otherwise the breaker's own (an open breaker whose open period has passed
// reports half-open).
func (b *Breaker) State() State {
	switch b.Forced() {
	case ForceOpen:
		return StateOpen
	case ForceClosed:
		return StateClosed
	}
	b.mu.Lock()
	b.advanceLocked(time.Now())
	s := b.m.state
	b.unlock()
	b.flush()
	return s
}

// refresh brings the state up to now (an expired open period turns
// half-open) and delivers the transitions.
func (b *Breaker) refresh() {
	b.mu.Lock()
	b.advanceLocked(time.Now())
	b.unlock()
	b.flush()
}

// Counts returns the counts of the current window (or of the current
// half-open trial). While closed, a success that follows a success takes
// no lock (it cannot change the state by itself): with a failure ratio (and
// no slow-call ratio) such successes are counted in a lock-free window
// (okWindow) and included in Requests and TotalSuccesses here and in the
// trip decision; with only consecutive failures they are not counted, so
// Requests and TotalSuccesses undercount. Failures and ConsecutiveFailures
// are exact; ConsecutiveSuccesses undercounts.
func (b *Breaker) Counts() Counts {
	b.mu.Lock()
	c, st := b.m.counts, b.m.state
	b.mu.Unlock()
	if b.ok != nil && st == StateClosed {
		n := b.ok.count(b.ok.now())
		c.Requests += n
		c.TotalSuccesses += n
	}
	return c
}

// Forced returns the current override.
func (b *Breaker) Forced() Force { return Force(b.word.Load() & wordForce >> 2) }

// ForceOpen makes every message wait, whatever the counts, until
// ClearForce or ForceClosed: the operator's kill switch. Waiting messages
// are still bounded by the max hold.
func (b *Breaker) ForceOpen() { b.setForce(ForceOpen) }

// ForceClosed lets every message through uncounted and without a drain,
// whatever the counts, until ClearForce or ForceOpen. Its successes are
// still measured as throughput: the baseline of a later drain.
func (b *Breaker) ForceClosed() { b.setForce(ForceClosed) }

// ClearForce returns the breaker to its counts. Leaving ForceOpen for a
// closed state starts a drain, as a recovery does.
func (b *Breaker) ClearForce() { b.setForce(ForceNone) }

func (b *Breaker) setForce(f Force) {
	now := time.Now()
	b.mu.Lock()
	b.advanceLocked(now)
	b.force = f
	b.reconcileLocked(now)
	b.unlock()
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

func (b *Breaker) effectiveLocked() State {
	switch b.force {
	case ForceOpen:
		return StateOpen
	case ForceClosed:
		return StateClosed
	}
	return b.m.state
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
	b.wakeLocked()
	switch to {
	case StateOpen:
		b.stopDrainLocked(now, from == StateClosed)
	case StateClosed:
		if b.force == ForceClosed {
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
	if b.word.Load()&wordPending == 0 {
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
		b.delivering = true
		b.unlock()

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
	if err == nil {
		return false
	}
	return builtinExcluded(err) || (b.cfg.isExcluded != nil && b.cfg.isExcluded(err))
}

// builtinExcluded reports the errors no breaker counts (local or fleet):
// context.Canceled, a deferral (the handler did not run), and the classes
// that are the message's fault, not the downstream's: permanent and
// validation.
func builtinExcluded(err error) bool {
	if errors.Is(err, context.Canceled) || levee.IsDeferral(err) {
		return true
	}
	switch levee.ClassOf(err) {
	case levee.ClassPermanent, levee.ClassValidation:
		return true
	}
	return false
}

func (b *Breaker) isSuccessful(err error) bool {
	return err == nil || (b.cfg.isSuccessful != nil && b.cfg.isSuccessful(err))
}

// classify decides how a handler's result counts. It runs outside mu: the
// user's hooks never run under the breaker's lock.
func (b *Breaker) classify(err error) verdict {
	switch {
	case b.isExcluded(err):
		return verdictExcluded
	case b.isSuccessful(err):
		return verdictSuccess
	}
	return verdictFailure
}
