package ratelimit

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// bucket is Levee's one token bucket. It is a GCRA scheduler: instead of
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
//     schedule restarts from now, as in a plain token bucket.
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
type bucket struct {
	// fast is true when the bucket is unlimited and open: Wait returns at
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
	catchUp   float64 // cap on credit and on slots caught up while queued
	head      *waiter
	tail      *waiter
	queued    int
	timer     *time.Timer
	timerAt   float64 // wake time the timer is armed for; NaN when not armed
	closed    bool
	granted   uint64 // permits granted since creation (for adaptive control)

	// pool recycles waiters (and their channels) of this bucket only, so a
	// Wait allocates nothing in steady state and no state is shared between
	// limiters.
	pool sync.Pool
}

// rebaseAfter is how far "now" may drift from epoch before the epoch moves
// (2^40 ns, about 18 minutes; float64 precision there is ~0.0002 ns).
const rebaseAfter = 1 << 40

// maxInterval caps the interval (ns) so that tat and tau stay finite.
const maxInterval = 1e30

type waiterState uint8

const (
	stateQueued waiterState = iota
	stateGranted
	stateExpired
	stateClosed
	stateGone // cancelled by its context
)

// waiter is one queued Wait. ch is buffered (1) so releases never block.
type waiter struct {
	ch         chan struct{}
	prev, next *waiter
	state      waiterState // guarded by bucket.mu until ch is signalled
	deadline   float64     // max-wait deadline (ns since epoch), +Inf none
	retry      float64     // expected remaining wait when expired
	g          grant       // the permit, when granted
	slot       float64     // its slot, when granted
}

func newWaiter() any { return &waiter{ch: make(chan struct{}, 1)} }

func newBucket(unlimited bool, rate float64, burst int, catchUp time.Duration) *bucket {
	b := &bucket{epoch: time.Now(), timerAt: math.NaN(), catchUp: float64(catchUp)}
	b.pool.New = newWaiter
	b.setLocked(0, unlimited, rate, burst)
	b.credit = 0
	return b
}

// nowLocked returns the current time in ns since epoch, rebasing if needed.
func (b *bucket) nowLocked() float64 {
	d := time.Since(b.epoch)
	if d >= rebaseAfter {
		shift := float64(d)
		b.epoch = b.epoch.Add(d)
		b.tat -= shift
		b.timerAt -= shift
		for w := b.head; w != nil; w = w.next {
			w.deadline -= shift
		}
		d = 0
	}
	return float64(d)
}

// setLocked applies a new rate and burst at now, keeping the permits owed:
// a bucket in debt stays in debt by the same number of permits.
func (b *bucket) setLocked(now float64, unlimited bool, rate float64, burst int) {
	debt := 0.0
	if !b.unlimited && b.rate > 0 && b.tat > now {
		debt = (b.tat - now) / b.interval
	}
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
		// tat-now is the debt in time; tat <= now means a full bucket.
		b.tat = now + debt*b.interval
	}
	b.fast.Store(unlimited && !b.closed)
}

// arrivalBase is the schedule position a new arrival starts from when no
// one is queued: tat if the schedule is behind now by no more than the
// measured lateness (credit), so slots lost to a late wake-up are caught
// up; otherwise now (the bucket refilled up to burst meanwhile).
func (b *bucket) arrivalBase(now float64) float64 {
	if b.tat >= now-b.credit {
		return b.tat
	}
	return now
}

// noteLateness records that a permit whose slot was slot is being used at
// now: the lateness becomes the credit of the next arrival.
func (b *bucket) noteLatenessLocked(now, slot float64) {
	b.credit = math.Min(math.Max(now-slot, 0), b.catchUp)
}

// queueBase is the schedule position of the head of the queue: waiters
// were present all along, so the schedule continues from tat, forfeiting at
// most catchUp of slots missed by a very late wake-up.
func (b *bucket) queueBase(now float64) float64 {
	return math.Max(b.tat, now-b.catchUp)
}

// estimate returns the slot a new arrival would get (ns since epoch),
// +Inf when the rate is 0.
func (b *bucket) estimate(now float64) float64 {
	if b.rate <= 0 {
		return math.Inf(1)
	}
	if b.head == nil {
		return b.arrivalBase(now) - b.tau
	}
	return b.queueBase(now) - b.tau + float64(b.queued)*b.interval
}

// grant identifies one granted permit so that it can be given back when
// the caller could not use it (see undo). The zero grant undoes nothing.
type grant struct {
	before, after float64
	ok            bool
}

// grantLocked takes the permit at base.
func (b *bucket) grantLocked(base float64) grant {
	b.tat = base + b.interval
	b.granted++
	return grant{before: base, after: b.tat, ok: true}
}

// undo gives back g if nothing was scheduled after it; otherwise the
// permit is forfeited, so undo can never cause over-admission.
func (b *bucket) undo(g grant) {
	if !g.ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.undoLocked(g)
}

func (b *bucket) undoLocked(g grant) {
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
func (b *bucket) tryLocked(now float64) (grant, bool) {
	if b.unlimited {
		b.granted++
		return grant{}, true
	}
	if b.head != nil {
		b.releaseLocked(now)
		if b.head != nil {
			return grant{}, false
		}
	}
	if b.rate <= 0 {
		return grant{}, false
	}
	base := b.arrivalBase(now)
	if base-b.tau <= now {
		return b.grantLocked(base), true
	}
	return grant{}, false
}

// releaseLocked releases every queued waiter whose slot is due and expires
// every head whose max-wait deadline passed before its slot.
func (b *bucket) releaseLocked(now float64) {
	first := true
	for w := b.head; w != nil; w = b.head {
		if b.unlimited {
			b.granted++
			w.g = grant{}
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

func (b *bucket) pushLocked(w *waiter) {
	w.prev, w.next = b.tail, nil
	if b.tail != nil {
		b.tail.next = w
	} else {
		b.head = w
	}
	b.tail = w
	b.queued++
}

func (b *bucket) removeLocked(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		b.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		b.tail = w.prev
	}
	w.prev, w.next = nil, nil
	b.queued--
}

func (b *bucket) resolveLocked(w *waiter, s waiterState) {
	b.removeLocked(w)
	w.state = s
	w.ch <- struct{}{}
}

// armLocked points the single timer at the next event: the head's slot or
// its max-wait deadline, whichever comes first.
func (b *bucket) armLocked(now float64) {
	wake := math.Inf(1)
	if b.head != nil && !b.closed {
		wake = b.head.deadline
		if b.rate > 0 && !b.unlimited {
			wake = math.Min(wake, b.queueBase(now)-b.tau)
		}
	}
	if math.IsInf(wake, 1) {
		if b.timer != nil && !math.IsNaN(b.timerAt) {
			b.timer.Stop()
			b.timerAt = math.NaN()
		}
		return
	}
	if wake == b.timerAt {
		return
	}
	d := math.Ceil(wake - now)
	if d < 0 {
		d = 0
	}
	if d > float64(maxDuration) {
		d = float64(maxDuration)
	}
	b.timerAt = wake
	if b.timer == nil {
		b.timer = time.AfterFunc(time.Duration(d), b.fire)
		return
	}
	b.timer.Reset(time.Duration(d))
}

// fire is the timer callback: one wake-up releases every due permit.
func (b *bucket) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.timerAt = math.NaN()
	now := b.nowLocked()
	b.releaseLocked(now)
	b.armLocked(now)
}

// wait blocks until a permit is granted, ctx is done, the wait would exceed
// maxWait (ns, 0 for no bound) or the bucket is closed.
func (b *bucket) wait(ctx context.Context, maxWait float64) (grant, error) {
	if b.fast.Load() {
		return grant{}, nil
	}
	if err := ctx.Err(); err != nil {
		return grant{}, err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return grant{}, ErrClosed
	}
	now := b.nowLocked()
	if g, ok := b.tryLocked(now); ok {
		b.mu.Unlock()
		return g, nil
	}
	slot := b.estimate(now)
	wait := slot - now
	if maxWait > 0 && wait > maxWait {
		b.mu.Unlock()
		return grant{}, limited(wait, reasonMaxWait)
	}
	if dl, ok := ctx.Deadline(); ok && slot > float64(dl.Sub(b.epoch)) {
		b.mu.Unlock()
		return grant{}, limited(wait, reasonDeadline)
	}
	w := b.pool.Get().(*waiter)
	w.state = stateQueued
	w.deadline = math.Inf(1)
	if maxWait > 0 {
		w.deadline = now + maxWait
	}
	b.pushLocked(w)
	if b.head == w {
		b.armLocked(now)
	}
	b.mu.Unlock()

	select {
	case <-w.ch:
		if w.state == stateGranted {
			// The waiter runs only now: record the real lateness (timer
			// plus scheduling), so the consumer's next arrival catches up.
			b.mu.Lock()
			b.noteLatenessLocked(b.nowLocked(), w.slot)
			b.mu.Unlock()
		}
		return b.finish(w)
	case <-ctx.Done():
	}
	b.mu.Lock()
	if w.state == stateQueued {
		wasHead := b.head == w
		b.removeLocked(w)
		w.state = stateGone
		if wasHead {
			b.armLocked(b.nowLocked())
		}
		b.mu.Unlock()
		b.pool.Put(w)
		return grant{}, ctx.Err()
	}
	// Resolved concurrently with the cancellation. Give a granted permit
	// back if nothing was scheduled after it; otherwise it is forfeited
	// (never over-admitting).
	if w.state == stateGranted {
		b.undoLocked(w.g)
	}
	b.mu.Unlock()
	<-w.ch
	st := w.state
	b.pool.Put(w)
	if st == stateClosed {
		return grant{}, ErrClosed
	}
	return grant{}, ctx.Err()
}

// finish turns a resolved waiter into Wait's result and recycles it.
func (b *bucket) finish(w *waiter) (grant, error) {
	st, retry, g := w.state, w.retry, w.g
	b.pool.Put(w)
	switch st {
	case stateGranted:
		return g, nil
	case stateExpired:
		return grant{}, limited(retry, reasonExpired)
	default:
		return grant{}, ErrClosed
	}
}

// try admits at once or returns a *LimitedError with the expected wait.
func (b *bucket) try() (grant, error) {
	if b.fast.Load() {
		return grant{}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return grant{}, ErrClosed
	}
	now := b.nowLocked()
	if g, ok := b.tryLocked(now); ok {
		return g, nil
	}
	return grant{}, limited(b.estimate(now)-now, reasonNoToken)
}

// reschedLocked re-evaluates the queue after a change of rate or burst.
func (b *bucket) reschedLocked(now float64) {
	if b.closed {
		return
	}
	if b.head != nil {
		b.releaseLocked(now)
	}
	b.armLocked(now)
}

// snapshot returns the current settings.
func (b *bucket) snapshot() (unlimited bool, rate float64, burst int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.unlimited, b.rate, b.burst
}

// close fails every queued waiter with ErrClosed; it is idempotent.
func (b *bucket) close() {
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
