package priority

import "time"

// waiter is one message waiting for a slot. Waiters are pooled: a steady
// stream of messages reuses them, with their channel and timer.
type waiter struct {
	// key orders waiters: base·aging − enqueued. A waiter's effective
	// priority at time t is base + (t − enqueued)/aging = (key + t)/aging,
	// so comparing effective priorities at any instant is comparing keys,
	// and the key never changes while the waiter waits. Higher runs first.
	key  int64
	seq  uint64        // arrival order; breaks ties FIFO
	base int           // base priority, MinPriority..MaxPriority
	enq  time.Duration // enqueue time, since the scheduler's epoch
	idx  [2]int        // position in the best-first and worst-first heaps; -1 when out
	// waited is set with a grant, by the releaser: the wait until then.
	waited time.Duration
	// ch carries the outcome, sent under the scheduler's lock by whoever
	// removes the waiter from the heaps: nil for a granted slot, or the
	// rejection sentinel. Buffered (1), so the sender never blocks.
	ch    chan error
	timer *time.Timer
}

// ahead reports whether a runs before b: higher key, then earlier arrival.
func ahead(a, b *waiter) bool {
	return a.key > b.key || (a.key == b.key && a.seq < b.seq)
}

const (
	bestFirst  = 0
	worstFirst = 1
)

// entry is a heap slot: the waiter's ordering fields are copied inline so
// comparisons do not chase pointers.
type entry struct {
	key int64
	seq uint64
	w   *waiter
}

// before reports whether a runs before b: higher key, then earlier arrival.
func (a *entry) before(b *entry) bool {
	return a.key > b.key || (a.key == b.key && a.seq < b.seq)
}

// waitHeap is a binary heap of waiters. The queue keeps two over the same
// waiters: best first (which waiter gets a freed slot) and worst first
// (which waiter is shed when max_waiting is full). Every operation is
// O(log n); removal of any waiter uses its stored index.
type waitHeap struct {
	items []entry
	which int // bestFirst or worstFirst
}

func (h *waitHeap) len() int { return len(h.items) }

func (h *waitHeap) top() *waiter {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0].w
}

func (h *waitHeap) less(i, j int) bool {
	if h.which == bestFirst {
		return h.items[i].before(&h.items[j])
	}
	return h.items[j].before(&h.items[i])
}

func (h *waitHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].w.idx[h.which] = i
	h.items[j].w.idx[h.which] = j
}

func (h *waitHeap) push(w *waiter) {
	w.idx[h.which] = len(h.items)
	h.items = append(h.items, entry{key: w.key, seq: w.seq, w: w})
	h.up(len(h.items) - 1)
}

// remove takes w out of the heap; w must be in it.
func (h *waitHeap) remove(w *waiter) {
	i := w.idx[h.which]
	n := len(h.items) - 1
	if i != n {
		h.swap(i, n)
	}
	h.items[n] = entry{}
	h.items = h.items[:n]
	w.idx[h.which] = -1
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
}

func (h *waitHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h *waitHeap) down(i0 int) bool {
	i, n := i0, len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}

// queue is the set of waiters, ordered both ways (worst first only when
// the queue is bounded, since only shedding needs it).
type queue struct {
	best    waitHeap
	worst   waitHeap
	bounded bool
}

func newQueue(bounded bool) queue {
	return queue{best: waitHeap{which: bestFirst}, worst: waitHeap{which: worstFirst}, bounded: bounded}
}

func (q *queue) len() int { return q.best.len() }

func (q *queue) push(w *waiter) {
	q.best.push(w)
	if q.bounded {
		q.worst.push(w)
	}
}

func (q *queue) remove(w *waiter) {
	q.best.remove(w)
	if q.bounded {
		q.worst.remove(w)
	}
}

func (q *queue) queued(w *waiter) bool { return w.idx[bestFirst] >= 0 }
