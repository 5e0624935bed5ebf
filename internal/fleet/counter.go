package fleet

import "sync/atomic"

// counter is a Pool's tokens: one atomic word that never goes below zero.
// (Spreading it over several cache lines was measured slower on 2 cores:
// the random pick costs more than the contention it saves.)
type counter struct{ n atomic.Int64 }

// take takes one token and returns the count left, or -1 when empty.
func (c *counter) take() int64 {
	for {
		v := c.n.Load()
		if v <= 0 {
			return -1
		}
		if c.n.CompareAndSwap(v, v-1) {
			return v - 1
		}
	}
}

// add adds k tokens (k > 0).
func (c *counter) add(k int64) {
	if k > 0 {
		c.n.Add(k)
	}
}

// put gives one token back.
func (c *counter) put() { c.n.Add(1) }

// sum returns the tokens held.
func (c *counter) sum() int64 { return c.n.Load() }

// drain takes up to n tokens and returns how many it took.
func (c *counter) drain(n int64) int64 {
	for {
		v := c.n.Load()
		k := min(v, n)
		if k <= 0 {
			return 0
		}
		if c.n.CompareAndSwap(v, v-k) {
			return k
		}
	}
}
