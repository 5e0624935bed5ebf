package gcra

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Bucket is Levee's one token Bucket. It is a GCRA scheduler: instead of
// counting tokens it keeps the theoretical arrival time (tat) of the next
// permit, so a permit is due at tat-tau, where tau=(burst-1)*interval.
//
// Admission is by schedule, not by wake-up:
//
//   - Waiters queue in FIFO order; the single timer is armed for the head's
//     slot. When it fires, however late, every waiter whose slot is due is
//     released in the same pass, and each release advances tat by exactly
//     one interval from the previous slot, never from "now". A late wake-up
//     therefore delays permits but does not lose them (slots more than
//     catchUp in the past are forfeited, so a stall cannot turn into an
//     unbounded burst).
//   - Lateness is measured, not guessed: when a released waiter finally
//     runs, it records how late it is relative to its slot (timer
//     granularity plus scheduling delay), capped at catchUp. A consumer
//     that comes back with the schedule behind now by no more than that
//     lateness continues the schedule instead of restarting it from now, so
//     slots that passed while the runtime woke it late are not lost: a
//     burst-1 limiter keeps its rate even when the timer is coarser than
//     the interval, also for a single sequential consumer. Time a consumer
//     spends elsewhere (its handler, a pause) is not credited: after it the
//     schedule restarts from now, as in a plain token Bucket.
//   - The clock is read under the lock, so concurrent callers can never see
//     time go backwards relative to the state they update (golang/go#65508).
//
// Bound: a permit is never granted more than catchUp after its slot, so
// over any window of length W admissions <= rate*(W+L) + burst, where
// L <= catchUp is the measured lateness; over the long run they never
// exceed rate*elapsed + burst.
//
// All times are float64 nanoseconds since epoch; the epoch moves forward
// (rebase) every ~18 minutes so that precision stays far below 1 ns.
type Bucket struct {
	// fast is true when the Bucket is unlimited and open: Wait returns at
	// once without taking the lock. Written under mu.
	fast atomic.Bool

	mu sync.Mutex
	// all fields below are guarded by mu
	epoch     time.Time
	unlimited bool
	rate      float64 // permits per second; 0 admits nothing
	burst     int
	interval  float64 // ns per permit; +Inf when rate is 0
	tau       float64 // (burst-1)*interval
	tat       float64 // theoretical arrival time of the next permit
	credit    float64 // measured lateness of the last release, <= catchUp
	spread    float64 // last slot a refusal was pointed at (TrySpread); -Inf none
	catchUp   float64 // cap on credit and on slots caught up while queued
	head      *waiter
	tail      *waiter
	queued    int
	timer     *time.Timer
	timerAt   float64 // wake time the timer is armed for; NaN when not armed
	quantum   float64 // least time between two timer wake-ups (ns); 0 none
	lastFire  float64 // when the timer last fired; -Inf before
	onWake    func()  // run by the timer before it releases; nil none
	closed    bool
	granted   uint64 // permits granted since creation (for adaptive control)

	// pool recycles waiters (and their channels) of this Bucket only, so a
	// Wait allocates nothing in steady state and no state is shared between
	// limiters.
	pool sync.Pool
}

// rebaseAfter is how far "now" may drift from epoch before the epoch moves
// (2^40 ns, about 18 minutes; float64 precision there is ~0.0002 ns).
const rebaseAfter = 1 << 40

// maxInterval caps the interval (ns) so that tat and tau stay finite.
const maxInterval = 1e30

func New(unlimited bool, rate float64, burst int, catchUp time.Duration) *Bucket {
	b := &Bucket{epoch: time.Now(), timerAt: math.NaN(), catchUp: float64(catchUp), lastFire: math.Inf(-1), spread: math.Inf(-1)}
	b.pool.New = newWaiter
	b.setLocked(0, unlimited, rate, burst)
	b.credit = 0
	return b
}

// nowLocked returns the current time in ns since epoch, rebasing if needed.
func (b *Bucket) nowLocked() float64 {
	d := time.Since(b.epoch)
	if d >= rebaseAfter {
		shift := float64(d)
		b.epoch = b.epoch.Add(d)
		b.tat -= shift
		b.timerAt -= shift
		b.lastFire -= shift
		b.spread -= shift
		for w := b.head; w != nil; w = w.next {
			w.deadline -= shift
		}
		d = 0
	}
	return float64(d)
}

// setLocked applies a new rate and burst at now, keeping the permits owed:
// a Bucket in debt stays in debt by the same number of permits, and the
// refusals spread over the permits to come (TrySpread) stay spread over as
// many permits, at the new rate.
func (b *Bucket) setLocked(now float64, unlimited bool, rate float64, burst int) {
	debt, spread := 0.0, 0.0
	if !b.unlimited && b.rate > 0 && b.tat > now {
		debt = (b.tat - now) / b.interval
	}
	if !b.unlimited && b.rate > 0 && b.spread > now {
		spread = (b.spread - now) / b.interval
	}
	b.spread = math.Inf(-1)
	b.unlimited = unlimited
	b.rate = rate
	b.burst = burst
	switch {
	case unlimited:
		b.interval, b.tau = 0, 0
		b.tat = math.Inf(-1)
	case rate <= 0:
		b.interval, b.tau = math.Inf(1), 0
		b.tat = math.Inf(-1)
	default:
		// Clamp so that arithmetic stays finite for absurdly low rates
		// (below 1e-21/s, one permit per ~30 trillion years).
		b.interval = math.Min(1e9/rate, maxInterval)
		b.tau = float64(burst-1) * b.interval
		// tat-now is the debt in time; tat <= now means a full Bucket.
		b.tat = now + debt*b.interval
		if spread > 0 {
			b.spread = now + spread*b.interval
		}
	}
	b.fast.Store(unlimited && !b.closed)
}

// arrivalBase is the schedule position a new arrival starts from when no
// one is queued: tat if the schedule is behind now by no more than the
// measured lateness (credit), so slots lost to a late wake-up are caught
// up; otherwise now (the Bucket refilled up to burst meanwhile).
func (b *Bucket) arrivalBase(now float64) float64 {
	if b.tat >= now-b.credit {
		return b.tat
	}
	return now
}

// noteLateness records that a permit whose slot was slot is being used at
// now: the lateness becomes the credit of the next arrival.
func (b *Bucket) noteLatenessLocked(now, slot float64) {
	b.credit = math.Min(math.Max(now-slot, 0), b.catchUp)
}

// queueBase is the schedule position of the head of the queue: waiters
// were present all along, so the schedule continues from tat, forfeiting at
// most catchUp of slots missed by a very late wake-up.
func (b *Bucket) queueBase(now float64) float64 {
	return math.Max(b.tat, now-b.catchUp)
}

// estimate returns the slot a new arrival would get (ns since epoch),
// +Inf when the rate is 0.
func (b *Bucket) estimate(now float64) float64 {
	if b.rate <= 0 {
		return math.Inf(1)
	}
	if b.head == nil {
		return b.arrivalBase(now) - b.tau
	}
	return b.queueBase(now) - b.tau + float64(b.queued)*b.interval
}

// Grant identifies one granted permit so that it can be given back when
// the caller could not use it (see undo). The zero Grant undoes nothing.
type Grant struct {
	before, after float64
	ok            bool
}

// grantLocked takes the permit at base.
func (b *Bucket) grantLocked(base float64) Grant {
	b.tat = base + b.interval
	b.granted++
	return Grant{before: base, after: b.tat, ok: true}
}

// Undo gives back g if nothing was scheduled after it; otherwise the
// permit is forfeited, so undo can never cause over-admission.
func (b *Bucket) Undo(g Grant) {
	if !g.ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.undoLocked(g)
}

func (b *Bucket) undoLocked(g Grant) {
	if g.ok && !b.unlimited && b.tat == g.after {
		b.tat = g.before
		b.granted--
		if !b.closed && b.head != nil {
			now := b.nowLocked()
			b.releaseLocked(now)
			b.armLocked(now)
		}
	}
}

// tryLocked admits at once if a permit is due and nobody is queued ahead.
func (b *Bucket) tryLocked(now float64) (Grant, bool) {
	if b.unlimited {
		b.granted++
		return Grant{}, true
	}
	if b.head != nil {
		b.releaseLocked(now)
		if b.head != nil {
			return Grant{}, false
		}
	}
	if b.rate <= 0 {
		return Grant{}, false
	}
	base := b.arrivalBase(now)
	if base-b.tau <= now {
		return b.grantLocked(base), true
	}
	return Grant{}, false
}

// releaseLocked releases every queued waiter whose slot is due and expires
// every head whose max-wait deadline passed before its slot.
func (b *Bucket) releaseLocked(now float64) {
	first := true
	for w := b.head; w != nil; w = b.head {
		if b.unlimited {
			b.granted++
			w.g = Grant{}
			b.resolveLocked(w, stateGranted)
			continue
		}
		slot := math.Inf(1)
		if b.rate > 0 {
			base := b.queueBase(now)
			slot = base - b.tau
			if slot <= now && slot <= w.deadline {
				if first {
					b.noteLatenessLocked(now, slot)
					first = false
				}
				w.g = b.grantLocked(base)
				w.slot = slot
				b.resolveLocked(w, stateGranted)
				continue
			}
		}
		if w.deadline <= now {
			w.retry = slot - now
			b.resolveLocked(w, stateExpired)
			continue
		}
		break
	}
}

// Try admits at once if a permit is due and nobody waits ahead;
// otherwise it returns NoToken with the expected wait.
func (b *Bucket) Try() (Grant, Result) {
	if b.fast.Load() {
		return Grant{}, Result{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Grant{}, Result{Status: Closed}
	}
	now := b.nowLocked()
	if g, ok := b.tryLocked(now); ok {
		return g, Result{}
	}
	return Grant{}, Result{Status: NoToken, Wait: b.estimate(now) - now}
}

// reschedLocked re-evaluates the queue after a change of rate or burst.
func (b *Bucket) reschedLocked(now float64) {
	if b.closed {
		return
	}
	if b.head != nil {
		b.releaseLocked(now)
	}
	b.armLocked(now)
}

// Close fails every queued waiter with Closed, and every later call; it
// stops the timer and is idempotent.
func (b *Bucket) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	b.fast.Store(false)
	if b.timer != nil {
		b.timer.Stop()
		b.timerAt = math.NaN()
	}
	for w := b.head; w != nil; w = b.head {
		b.resolveLocked(w, stateClosed)
	}
}

// TrySpread is Try for a caller that turns a refusal into "come back
// after Wait" (reject mode): the Wait of a refusal is not the time to the
// next free permit, which every caller refused meanwhile would be told
// alike (a backlog told so comes back all together, and all but one are
// refused again), but the time to the first permit no earlier refusal was
// pointed at. Refusals are spread over the permits to come, one interval
// apart, and never further than maxWait (ns) from now.
//
// Nothing is reserved: the spread is a schedule apart from tat, so a
// refused caller that never comes back costs no permit, and a permit due
// is granted to whoever comes first. Once every slot pointed at has
// passed, the next refusal is told the next free permit, as by Try.
//
// A caller told a slot comes back late (the transport's redelivery
// latency): when the permit due was pointed at by a refusal, whoever takes
// it up to catchUp after its slot continues the schedule, as a late
// waiter does (see Bucket), so the lateness does not cost the rate, and
// the Bucket's bound holds.
func (b *Bucket) TrySpread(maxWait float64) (Grant, Result) {
	if b.fast.Load() {
		return Grant{}, Result{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Grant{}, Result{Status: Closed}
	}
	now := b.nowLocked()
	if b.head == nil && b.rate > 0 && !b.unlimited && b.spread >= b.tat-b.tau &&
		b.tat-b.tau <= now && b.tat >= now-b.catchUp {
		return b.grantLocked(b.tat), Result{} // a slot pointed at, taken late
	}
	if g, ok := b.tryLocked(now); ok {
		return g, Result{}
	}
	at := b.estimate(now)
	if !math.IsInf(at, 1) {
		at = math.Min(math.Max(at, b.spread+b.interval), math.Max(now+maxWait, at))
		b.spread = at
	}
	return Grant{}, Result{Status: NoToken, Wait: at - now}
}
