package breaker

import "time"

// slowWindow counts slow calls in a rolling window of buckets aligned with
// the machine's (same period, restarted on every state change), so the
// slow-call ratio is slow calls over the machine's completed calls. It is
// guarded by Breaker.mu.
type slowWindow struct {
	period time.Duration
	start  time.Time
	counts []uint32
	ages   []int64 // the bucket age each count belongs to
}

func newSlowWindow(period time.Duration, n int) *slowWindow {
	return &slowWindow{period: period, counts: make([]uint32, n), ages: make([]int64, n)}
}

func (w *slowWindow) age(now time.Time) int64 {
	a := int64(now.Sub(w.start) / w.period)
	if a < 0 {
		return 0
	}
	return a
}

func (w *slowWindow) reset(now time.Time) {
	w.start = now
	for i := range w.counts {
		w.counts[i], w.ages[i] = 0, 0
	}
}

func (w *slowWindow) record(now time.Time) {
	a := w.age(now)
	i := a % int64(len(w.counts))
	if w.ages[i] != a {
		w.counts[i], w.ages[i] = 0, a
	}
	w.counts[i]++
}

func (w *slowWindow) count(now time.Time) uint32 {
	a := w.age(now)
	var n uint32
	for i, c := range w.counts {
		if a-w.ages[i] < int64(len(w.counts)) {
			n += c
		}
	}
	return n
}
