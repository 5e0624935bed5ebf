package breaker

import (
	"sync"
	"testing"
	"time"
)

func TestOKWindowConcurrentAdds(t *testing.T) {
	w := newOKWindow(time.Hour, 10)
	now := w.now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10000 {
				w.add(now)
			}
		}()
	}
	wg.Wait()
	if got := w.count(now); got != 80000 {
		t.Fatalf("count: got %d, want 80000 (no increment lost)", got)
	}
}

func TestOKWindowRolls(t *testing.T) {
	const p = int64(time.Second)
	w := newOKWindow(time.Second, 10)
	w.reset(0)
	for i := range int64(25) {
		w.add(i * p) // one success per bucket age 0..24
	}
	if got := w.count(24 * p); got != 10 {
		t.Fatalf("count at age 24: got %d, want 10 (ages 15..24)", got)
	}
	if got := w.count(40 * p); got != 0 {
		t.Fatalf("count at age 40: got %d, want 0", got)
	}
	w.add(10 * p) // older than the bucket's newer age: out of the window
	if got := w.count(24 * p); got != 10 {
		t.Fatalf("a stale add changed the count: got %d, want 10", got)
	}
	w.reset(30 * p)
	if got := w.count(30 * p); got != 0 {
		t.Fatalf("count after reset: got %d, want 0", got)
	}
	w.add(29 * p) // before the generation's start: counts in its first bucket
	w.add(31 * p)
	if got := w.count(31 * p); got != 2 {
		t.Fatalf("count in the new generation: got %d, want 2", got)
	}
}

func TestOKWindowAgeWraps(t *testing.T) {
	// Ages are compared modulo 2^32: a window running for more than 2^32
	// periods keeps counting.
	w := newOKWindow(1, 4)
	base := int64(1)<<32 - 2
	for i := range int64(4) {
		w.add(base + i) // ages 2^32-2, 2^32-1, 0 (wrapped), 1
	}
	if got := w.count(base + 3); got != 4 {
		t.Fatalf("count across the wrap: got %d, want 4", got)
	}
}
