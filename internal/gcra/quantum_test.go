package gcra

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestWakeQuantum: eight consumers that each take a permit, work 1ms and
// come back, at 1,000/s for one second. Without a quantum the timer wakes
// about once per permit; with a 10ms quantum at most once per 10ms, and the
// rate holds all the same (released waiters' lateness lets the next
// arrivals catch up). The wake hook runs once per wake-up.
func TestWakeQuantum(t *testing.T) {
	for _, tc := range []struct {
		name      string
		quantum   time.Duration
		maxWakes  int64
		minWakes  int64
		wantCount int
	}{
		{"no quantum", 0, 1000, 300, 1000},
		{"10ms quantum", 10 * time.Millisecond, 101, 50, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := New(false, 1000, 1, DefaultCatchUp)
				defer b.Close()
				b.SetWakeQuantum(tc.quantum)
				var wakes, admitted atomic.Int64
				b.SetWakeHook(func() { wakes.Add(1) })
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						for b.Take(ctx) == nil {
							admitted.Add(1)
							time.Sleep(time.Millisecond)
						}
					})
				}
				wg.Wait()
				t.Logf("%d wake-ups, %d admitted", wakes.Load(), admitted.Load())
				if w := wakes.Load(); w > tc.maxWakes || w < tc.minWakes {
					t.Errorf("timer woke %d times in 1s, want between %d and %d", w, tc.minWakes, tc.maxWakes)
				}
				if n := int(admitted.Load()); n < tc.wantCount*97/100 || n > tc.wantCount+1 {
					t.Errorf("admitted %d in 1s at 1000/s, want about %d", n, tc.wantCount)
				}
			})
		})
	}
}

// TestWakeHookSetsRate: a hook that raises the rate on every wake-up is
// followed by the waiters still queued, and never deadlocks the bucket.
func TestWakeHookSetsRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(false, 10, 1, DefaultCatchUp)
		defer b.Close()
		b.SetWakeHook(func() { b.SetRate(100) })
		ctx := context.Background()
		_ = b.Take(ctx) // the first permit is free
		start := time.Now()
		for range 11 {
			if err := b.Take(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// One slot at 10/s (100ms), then ten at 100/s (10ms each).
		if got := time.Since(start); got != 200*time.Millisecond {
			t.Errorf("took %s, want 200ms", got)
		}
	})
}
