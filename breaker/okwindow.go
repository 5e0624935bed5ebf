package breaker

import (
	"sync/atomic"
	"time"
)

// okWindow counts the successes the fast path does not report to the
// machine (a success while no failure streak runs), in a rolling window of
// buckets aligned with the machine's (same period, restarted on every
// state change). Each such success is counted here and only here;
// readyToTripLocked adds them to the machine's counts, so a failure-ratio
// policy sees every completed call while a success costs one clock read and
// one atomic update instead of the breaker's lock.
//
// Each bucket packs the bucket age (high 32 bits, compared modulo 2^32)
// and its count (low 32 bits) into one word, updated by compare-and-swap:
// a bucket is reused for a newer age without a lock and without losing a
// concurrent increment.
type okWindow struct {
	epoch   time.Time    // monotonic base of all offsets
	period  int64        // bucket period, ns
	start   atomic.Int64 // offset of the current generation's start, ns
	buckets []atomic.Uint64
}

func newOKWindow(period time.Duration, n int) *okWindow {
	return &okWindow{epoch: time.Now(), period: max(int64(period), 1), buckets: make([]atomic.Uint64, n)}
}

// now returns the offset of the current time, ns (monotonic clock).
func (w *okWindow) now() int64 { return int64(time.Since(w.epoch)) }

func (w *okWindow) age(now int64) uint32 {
	d := now - w.start.Load()
	if d < 0 {
		return 0
	}
	return uint32(d / w.period)
}

// add counts one success at now.
func (w *okWindow) add(now int64) {
	a := w.age(now)
	n := int32(len(w.buckets))
	b := &w.buckets[a%uint32(n)]
	for {
		v := b.Load()
		var nv uint64
		switch d := int32(a - uint32(v>>32)); {
		case d == 0 && uint32(v) != 0:
			nv = v + 1
		case d < 0 && d >= -2*n && uint32(v) != 0:
			// A newer age holds the bucket (this caller read the clock
			// before another moved it on): the success is out of the window.
			return
		default: // empty, or an older age: start the bucket afresh
			nv = uint64(a)<<32 | 1
		}
		if b.CompareAndSwap(v, nv) {
			return
		}
	}
}

// count returns the successes in the window at now.
func (w *okWindow) count(now int64) uint32 {
	a := w.age(now)
	n := int32(len(w.buckets))
	var sum uint32
	for i := range w.buckets {
		v := w.buckets[i].Load()
		if d := int32(a - uint32(v>>32)); d >= 0 && d < n {
			sum += uint32(v)
		}
	}
	return sum
}

// reset starts a new generation at now: earlier successes no longer count.
func (w *okWindow) reset(now int64) {
	w.start.Store(now)
	for i := range w.buckets {
		w.buckets[i].Store(0)
	}
}
