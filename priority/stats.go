package priority

import (
	"math"
	"math/bits"
	"time"
)

// Stats is a snapshot of a Scheduler, from Scheduler.Stats.
type Stats struct {
	// Name is the scheduler's name (WithName).
	Name string
	// Slots is the configured number of slots; InUse how many are held.
	Slots, InUse int
	// Waiting is how many messages wait for a slot.
	Waiting int
	// InvalidPriority counts levee_priority values that were not integers
	// (they took the default priority); ClampedPriority counts values, or
	// WithPriorityFunc results, outside MinPriority..MaxPriority.
	InvalidPriority, ClampedPriority int64
	// Levels holds per-priority figures, indexed by priority − MinPriority.
	Levels [Levels]LevelStats
}

// LevelStats are the figures of one priority level.
type LevelStats struct {
	// Priority is the level.
	Priority int
	// Waiting is how many messages of this priority wait now.
	Waiting int
	// Granted counts slots granted to this priority.
	Granted uint64
	// QueueFull, MaxWait and Closed count rejections by reason; Canceled
	// counts waits ended by the message context.
	QueueFull, MaxWait, Closed, Canceled uint64
	// Wait is the distribution of the wait before a slot was granted.
	Wait WaitHistogram
}

// WaitHistogram is a fixed-size log-linear histogram of wait times (eight
// sub-buckets per power of two, so quantiles are within 12.5%, and exact
// below 8ns). Recording never allocates. The zero value is empty.
type WaitHistogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	histSubBits = 3
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits + 1) * histSub
)

func histBucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - 1 // >= histSubBits
	m := (v >> (e - histSubBits)) & (histSub - 1)
	return (e-histSubBits+1)*histSub + int(m)
}

// histUpper is the largest value that falls in bucket i.
func histUpper(i int) time.Duration {
	if i < histSub {
		return time.Duration(i)
	}
	e := i/histSub + histSubBits - 1
	m := uint64(i % histSub)
	lower := (histSub + m) << (e - histSubBits)
	width := uint64(1) << (e - histSubBits)
	u := lower + width - 1
	if u > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(u)
}

func (h *WaitHistogram) record(d time.Duration) {
	d = max(d, 0)
	h.counts[histBucket(d)]++
	h.n++
	h.sum += d
	if d > h.max {
		h.max = d
	}
}

// Count returns the number of recorded waits.
func (h *WaitHistogram) Count() uint64 { return h.n }

// Max returns the longest recorded wait.
func (h *WaitHistogram) Max() time.Duration { return h.max }

// Mean returns the mean wait, zero when empty.
func (h *WaitHistogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns an upper estimate of the q-quantile (0 < q ≤ 1) of the
// recorded waits: the upper edge of the bucket holding it, never more than
// Max. It returns zero when empty.
func (h *WaitHistogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			return min(histUpper(i), h.max)
		}
	}
	return h.max
}

// levelState is the mutable per-level state, guarded by the scheduler's mu.
type levelState struct {
	waiting                              int
	granted                              uint64
	queueFull, maxWait, closed, canceled uint64
	wait                                 WaitHistogram
}
