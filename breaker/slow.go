package breaker

import (
	"sync"
	"time"
)

// slowWindow counts slow calls in a rolling window of buckets aligned with
// gobreaker's (same period, restarted on every state change), so the
// slow-call ratio is slow calls over gobreaker's completed calls.
type slowWindow struct {
	mu     sync.Mutex
	period time.Duration
	start  time.Time // guarded by mu
	counts []uint32  // guarded by mu
	ages   []int64   // guarded by mu: the bucket age each count belongs to
}

func newSlowWindow(period time.Duration, n int) *slowWindow {
	return &slowWindow{period: period, counts: make([]uint32, n), ages: make([]int64, n)}
}

func (w *slowWindow) ageLocked(now time.Time) int64 {
	a := int64(now.Sub(w.start) / w.period)
	if a < 0 {
		return 0
	}
	return a
}

func (w *slowWindow) reset(now time.Time) {
	w.mu.Lock()
	w.start = now
	for i := range w.counts {
		w.counts[i], w.ages[i] = 0, 0
	}
	w.mu.Unlock()
}

func (w *slowWindow) record(now time.Time) {
	w.mu.Lock()
	a := w.ageLocked(now)
	i := a % int64(len(w.counts))
	if w.ages[i] != a {
		w.counts[i], w.ages[i] = 0, a
	}
	w.counts[i]++
	w.mu.Unlock()
}

func (w *slowWindow) count(now time.Time) uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.ageLocked(now)
	var n uint32
	for i, c := range w.counts {
		if a-w.ages[i] < int64(len(w.counts)) {
			n += c
		}
	}
	return n
}
