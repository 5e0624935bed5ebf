package gcra

import (
	"context"
	"math"
	"time"
)

// This file holds the Bucket's waiter queue: FIFO waiters, the single
// timer, and the blocking wait.

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
	state      waiterState // guarded by Bucket.mu until ch is signalled
	deadline   float64     // max-wait deadline (ns since epoch), +Inf none
	retry      float64     // expected remaining wait when expired
	g          Grant       // the permit, when granted
	slot       float64     // its slot, when granted
}

func newWaiter() any { return &waiter{ch: make(chan struct{}, 1)} }

func (b *Bucket) pushLocked(w *waiter) {
	w.prev, w.next = b.tail, nil
	if b.tail != nil {
		b.tail.next = w
	} else {
		b.head = w
	}
	b.tail = w
	b.queued++
}

func (b *Bucket) removeLocked(w *waiter) {
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

func (b *Bucket) resolveLocked(w *waiter, s waiterState) {
	b.removeLocked(w)
	w.state = s
	w.ch <- struct{}{}
}

// armLocked points the single timer at the next event: the head's slot or
// its max-wait deadline, whichever comes first.
func (b *Bucket) armLocked(now float64) {
	wake := math.Inf(1)
	if b.head != nil && !b.closed {
		wake = b.head.deadline
		if b.rate > 0 && !b.unlimited {
			wake = math.Min(wake, b.queueBase(now)-b.tau)
		}
	}
	if b.quantum > 0 && !math.IsInf(wake, 1) {
		// Coalesce: one wake-up per quantum at most releases every slot
		// due by then together (see SetWakeQuantum).
		wake = math.Max(wake, b.lastFire+b.quantum)
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
	if d > float64(math.MaxInt64) {
		d = float64(math.MaxInt64)
	}
	b.timerAt = wake
	if b.timer == nil {
		b.timer = time.AfterFunc(time.Duration(d), b.fire)
		return
	}
	b.timer.Reset(time.Duration(d))
}

// fire is the timer callback: one wake-up releases every due permit. The
// wake hook, if any, runs after that, without the lock (it may set the
// rate for the waiters still queued; the ones released had their slots at
// the rate in force).
func (b *Bucket) fire() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.timerAt = math.NaN()
	now := b.nowLocked()
	b.lastFire = now
	b.releaseLocked(now)
	hook := b.onWake
	if hook == nil {
		b.armLocked(now)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	hook()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.armLocked(b.nowLocked())
	}
}

// Wait blocks until a permit is granted, ctx is done (Canceled: the caller
// reads ctx.Err()), the wait would exceed maxWait (ns, 0 for no bound:
// MaxWait, or Expired once queued) or outlast ctx's deadline (Deadline), or
// the bucket is closed (Closed). A permit granted at the moment ctx ends is
// given back when nothing was scheduled after it.
func (b *Bucket) Wait(ctx context.Context, maxWait float64) (Grant, Result) {
	if b.fast.Load() {
		return Grant{}, Result{}
	}
	if err := ctx.Err(); err != nil {
		return Grant{}, Result{Status: Canceled}
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return Grant{}, Result{Status: Closed}
	}
	now := b.nowLocked()
	if g, ok := b.tryLocked(now); ok {
		b.mu.Unlock()
		return g, Result{}
	}
	slot := b.estimate(now)
	wait := slot - now
	if maxWait > 0 && wait > maxWait {
		b.mu.Unlock()
		return Grant{}, Result{Status: MaxWait, Wait: wait}
	}
	if dl, ok := ctx.Deadline(); ok && slot > float64(dl.Sub(b.epoch)) {
		b.mu.Unlock()
		return Grant{}, Result{Status: Deadline, Wait: wait}
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
	queued := b.epoch.Add(time.Duration(now)) // now may be rebased while w waits
	b.mu.Unlock()

	select {
	case <-w.ch:
		return b.resolved(w, queued)
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
		return Grant{}, Result{Status: Canceled}
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
		return Grant{}, Result{Status: Closed}
	}
	return Grant{}, Result{Status: Canceled}
}

// resolved is Wait's result for w, resolved while it was queued (at
// queued): a granted permit reports how long it waited.
func (b *Bucket) resolved(w *waiter, queued time.Time) (Grant, Result) {
	var waited time.Duration
	if w.state == stateGranted {
		// The waiter runs only now: record the real lateness (timer plus
		// scheduling), so the consumer's next arrival catches up.
		b.mu.Lock()
		t := b.nowLocked()
		b.noteLatenessLocked(t, w.slot)
		waited = b.epoch.Add(time.Duration(t)).Sub(queued)
		b.mu.Unlock()
	}
	g, r := b.finish(w)
	if r.Status == Granted {
		r.Wait = float64(waited)
	}
	return g, r
}

// finish turns a resolved waiter into Wait's result and recycles it.
func (b *Bucket) finish(w *waiter) (Grant, Result) {
	st, retry, g := w.state, w.retry, w.g
	b.pool.Put(w)
	switch st {
	case stateGranted:
		return g, Result{}
	case stateExpired:
		return Grant{}, Result{Status: Expired, Wait: retry}
	default:
		return Grant{}, Result{Status: Closed}
	}
}
