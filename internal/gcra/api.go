package gcra

import (
	"context"
	"errors"
	"math"
	"time"
)

// DefaultCatchUp is the catch-up bound (see Bucket) of the buckets Levee
// makes without a setting of its own: enough for a coarse timer, never an
// unbounded burst.
const DefaultCatchUp = 50 * time.Millisecond

// Status says how a Wait or Try ended.
type Status uint8

// Statuses. Only Granted admits.
const (
	Granted  Status = iota // a permit was taken
	Closed                 // the bucket is closed
	Canceled               // the context ended first; the caller reads ctx.Err()
	NoToken                // Try: no permit is free now
	MaxWait                // the expected wait exceeds maxWait
	Deadline               // the expected wait would outlast the context's deadline
	Expired                // queued, and maxWait passed before the slot
)

// Result is how a Wait or Try ended. Wait is, for a refusal, the expected
// remaining wait in ns (+Inf when the rate is 0); for a permit Wait granted
// after queueing, how long it waited (ns); 0 for a permit free at once.
type Result struct {
	Status Status
	Wait   float64
}

// OK reports whether a permit was granted.
func (r Result) OK() bool { return r.Status == Granted }

// State is a bucket's settings and its count of permits granted.
type State struct {
	Unlimited bool
	Rate      float64 // permits per second; 0 admits nothing
	Burst     int
	Granted   uint64 // permits granted since New (for adaptive control)
	Closed    bool
}

// Snapshot returns the current state.
func (b *Bucket) Snapshot() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stateLocked()
}

func (b *Bucket) stateLocked() State {
	return State{Unlimited: b.unlimited, Rate: b.rate, Burst: b.burst, Granted: b.granted, Closed: b.closed}
}

// Update runs fn under the bucket's lock with the current state. When fn
// returns true, the bucket takes fn's Unlimited, Rate and Burst (a NaN or
// negative rate counts as 0, a burst below 1 as 1) at once, under load:
// permits already owed stay owed and queued waiters are rescheduled. fn must
// not call the bucket.
func (b *Bucket) Update(fn func(s *State) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stateLocked()
	if !fn(&s) {
		return
	}
	if math.IsNaN(s.Rate) || s.Rate < 0 {
		s.Rate = 0
	}
	now := b.nowLocked()
	b.setLocked(now, s.Unlimited, s.Rate, max(s.Burst, 1))
	b.reschedLocked(now)
}

// SetRate sets the rate: +Inf removes the limit, a NaN or negative rate
// admits nothing (fail closed).
func (b *Bucket) SetRate(perSecond float64) {
	b.Update(func(s *State) bool {
		s.Unlimited = math.IsInf(perSecond, 1)
		s.Rate = perSecond
		if s.Unlimited {
			s.Rate = 0
		}
		return true
	})
}

// SetWakeQuantum makes the bucket's timer wake at most once per d (0, the
// default, wakes it for every slot). Each wake-up releases every waiter
// whose slot is due, so at rates above 1/d permits are granted in groups of
// about rate*d instead of one per wake-up: a paced consumer (the breaker's
// drain) then wakes, acknowledges and fetches in batches, not once per
// message. The rate holds: released waiters record their lateness (at most
// d), so that arrivals right after a release catch up on the slots the
// quantum skipped, within the bucket's catch-up bound, which d should not
// exceed.
func (b *Bucket) SetWakeQuantum(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.quantum = float64(max(d, 0))
}

// SetWakeHook makes the bucket's timer call f each time it wakes, after
// it released the waiters due, without the bucket's lock held (f may call
// SetRate). A caller that moves the rate over time (the breaker's drain)
// moves it there and when it is about to wait, instead of on a timer of
// its own: the bucket then wakes only to admit.
func (b *Bucket) SetWakeHook(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onWake = f
}

// Fast reports whether the bucket is unlimited and open, so a Wait returns
// at once without its lock.
func (b *Bucket) Fast() bool { return b.fast.Load() }

// AtRest reports whether the bucket is as a new one would be: nobody
// queued and a full burst (or no rate to refill).
func (b *Bucket) AtRest() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.head == nil && (b.rate <= 0 || b.unlimited || b.tat <= b.nowLocked())
}

// ErrClosed is Take's error after Close.
var ErrClosed = errors.New("levee/gcra: bucket closed")

// Take waits for one permit with no max wait, for callers that pace
// themselves (the breaker's drain, replay pacing). It returns nil, ctx.Err()
// when ctx ends first, context.DeadlineExceeded when the slot would come
// after ctx's deadline, or ErrClosed.
func (b *Bucket) Take(ctx context.Context) error {
	_, r := b.Wait(ctx, 0)
	switch r.Status {
	case Granted:
		return nil
	case Closed:
		return ErrClosed
	case Deadline:
		return context.DeadlineExceeded
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return ErrClosed
}
