package priority

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestQueueMatchesSortedReference runs random pushes and removals (best,
// worst and arbitrary) against a sorted slice.
func TestQueueMatchesSortedReference(t *testing.T) {
	for _, bounded := range []bool{true, false} {
		rng := rand.New(rand.NewPCG(1, 2))
		q := newQueue(bounded)
		var ref []*waiter
		var seq uint64
		cmp := func(a, b *waiter) int {
			if ahead(a, b) {
				return -1
			}
			return 1
		}
		for step := range 20000 {
			switch op := rng.IntN(10); {
			case op < 5 || len(ref) == 0:
				w := &waiter{key: rng.Int64N(50), seq: seq, idx: [2]int{-1, -1}}
				seq++
				q.push(w)
				ref = append(ref, w)
				slices.SortFunc(ref, cmp)
			case op < 7:
				w := q.best.top()
				if w != ref[0] {
					t.Fatalf("step %d: best got key=%d seq=%d, want key=%d seq=%d", step, w.key, w.seq, ref[0].key, ref[0].seq)
				}
				q.remove(w)
				ref = ref[1:]
			case op < 8 && bounded:
				w := q.worst.top()
				if want := ref[len(ref)-1]; w != want {
					t.Fatalf("step %d: worst got key=%d seq=%d, want key=%d seq=%d", step, w.key, w.seq, want.key, want.seq)
				}
				q.remove(w)
				ref = ref[:len(ref)-1]
			default:
				i := rng.IntN(len(ref))
				w := ref[i]
				q.remove(w)
				if q.queued(w) {
					t.Fatalf("step %d: removed waiter still queued", step)
				}
				ref = slices.Delete(ref, i, i+1)
			}
			if q.len() != len(ref) {
				t.Fatalf("step %d: len got %d, want %d", step, q.len(), len(ref))
			}
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 7, 8, 9, 15, 16, 17, 1000, 1 << 20, 1<<40 + 12345, 1<<62 + 1} {
		b := histBucket(time.Duration(v))
		if b < prev {
			t.Errorf("bucket(%d)=%d below the previous %d", v, b, prev)
		}
		if up := histUpper(b); int64(up) < v {
			t.Errorf("upper(bucket(%d))=%d below the value", v, up)
		}
		if b > 0 {
			if lowUp := histUpper(b - 1); int64(lowUp) >= v {
				t.Errorf("value %d also fits bucket %d (upper %d)", v, b-1, lowUp)
			}
		}
		prev = b
	}
	var h WaitHistogram
	for i := 1; i <= 100; i++ {
		h.record(time.Duration(int64(i) * 1e6)) // 1ms..100ms
	}
	for _, tt := range []struct {
		q    float64
		want int64
	}{{0.5, 50e6}, {0.99, 99e6}, {1, 100e6}} {
		got := int64(h.Quantile(tt.q))
		if got < tt.want || float64(got) > float64(tt.want)*1.125 {
			t.Errorf("quantile %v: got %d, want within 12.5%% above %d", tt.q, got, tt.want)
		}
	}
	if h.Count() != 100 || int64(h.Max()) != 100e6 || int64(h.Mean()) != 50500000 {
		t.Errorf("count/max/mean: got %d %d %d", h.Count(), h.Max(), h.Mean())
	}
}

// BenchmarkQueue10k is the data-structure cost per message with 10,000
// waiting: one push and one pop of the best, keeping the size constant.
func BenchmarkQueue10k(b *testing.B) {
	for _, bounded := range []bool{true, false} {
		name := "bounded"
		if !bounded {
			name = "unbounded"
		}
		b.Run(name, func(b *testing.B) {
			q := newQueue(bounded)
			ws := make([]*waiter, 10001)
			var now int64
			for i := range ws {
				ws[i] = &waiter{idx: [2]int{-1, -1}}
			}
			push := func(w *waiter, i int) {
				now += 100
				w.key = int64(i%Levels)*int64(DefaultAging) - now
				w.seq = uint64(now)
				q.push(w)
			}
			for i, w := range ws[:10000] {
				push(w, i)
			}
			spare := ws[10000]
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				push(spare, i)
				spare = q.best.top()
				q.remove(spare)
				i++
			}
		})
	}
}
