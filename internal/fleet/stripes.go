package fleet

import (
	"math/rand/v2"
	"sync/atomic"
)

// numStripes is how many counters a Pool's tokens are spread over, so
// that goroutines on different cores rarely take from the same cache
// line.
const numStripes = 8

// stripe is one counter, alone on its cache line.
type stripe struct {
	n atomic.Int64
	_ [56]byte
}

// stripes are a Pool's tokens, spread over numStripes counters. No
// counter goes below zero.
type stripes [numStripes]stripe

// take takes one token, from a random stripe first; it returns the
// stripe's count after the take, or -1 when every stripe is empty.
func (s *stripes) take() int64 {
	start := rand.Uint32()
	for i := range uint32(numStripes) {
		st := &s[(start+i)%numStripes]
		for {
			v := st.n.Load()
			if v <= 0 {
				break
			}
			if st.n.CompareAndSwap(v, v-1) {
				return v - 1
			}
		}
	}
	return -1
}

// add spreads k tokens over the stripes.
func (s *stripes) add(k int64) {
	if k <= 0 {
		return
	}
	per, rem := k/numStripes, k%numStripes
	for i := range s {
		n := per
		if int64(i) < rem {
			n++
		}
		if n > 0 {
			s[i].n.Add(n)
		}
	}
}

// put gives one token back to a random stripe.
func (s *stripes) put() { s[rand.Uint32()%numStripes].n.Add(1) }

// sum returns the tokens held.
func (s *stripes) sum() int64 {
	var t int64
	for i := range s {
		t += s[i].n.Load()
	}
	return t
}

// drain takes up to n tokens and returns how many it took.
func (s *stripes) drain(n int64) int64 {
	var got int64
	for i := range s {
		for got < n {
			v := s[i].n.Load()
			k := min(v, n-got)
			if k <= 0 {
				break
			}
			if s[i].n.CompareAndSwap(v, v-k) {
				got += k
			}
		}
	}
	return got
}
