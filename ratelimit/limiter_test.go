package ratelimit

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/testkit"
)

func mustNew(t *testing.T, opts ...Option) *Limiter {
	t.Helper()
	l, err := New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// TestWaitSpacing: a single sequential consumer gets exactly rate permits
// per second, whatever the rate, with fake time.
func TestWaitSpacing(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		burst int
	}{{100, 1}, {1000, 1}, {10000, 1}, {50000, 1}, {1000, 10}, {3, 1}} {
		t.Run(fmtRate(tc.rate, tc.burst), func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				l := mustNew(t, WithRate(tc.rate), WithBurst(tc.burst))
				start := time.Now()
				n := int(tc.rate) * 2
				for i := 0; i < n; i++ {
					if err := l.Wait(context.Background()); err != nil {
						t.Fatalf("Wait %d: %v", i, err)
					}
				}
				got := time.Since(start)
				// n permits with burst b take (n-b)/rate.
				want := time.Duration(float64(n-tc.burst) / tc.rate * 1e9)
				if d := got - want; d < -time.Microsecond || d > time.Microsecond {
					t.Fatalf("%d permits took %v, want %v", n, got, want)
				}
			})
		})
	}
}

func fmtRate(r float64, b int) string {
	return "rate=" + itoa(int(r)) + "/burst=" + itoa(b)
}

// TestConcurrentWaitNeverOverAdmits: many goroutines contend; the count of
// grants by each instant never exceeds rate*t + burst.
func TestConcurrentWaitNeverOverAdmits(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		const rate, burst = 1000.0, 5
		l := mustNew(t, WithRate(rate), WithBurst(burst))
		start := time.Now()
		var mu sync.Mutex
		var times []time.Duration
		var wg sync.WaitGroup
		for g := 0; g < 32; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100; i++ {
					if err := l.Wait(context.Background()); err != nil {
						t.Errorf("Wait: %v", err)
						return
					}
					mu.Lock()
					times = append(times, time.Since(start))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(times) != 3200 {
			t.Fatalf("got %d grants, want 3200", len(times))
		}
		for i, at := range times {
			limit := int(at.Seconds()*rate+1e-6) + burst
			if i+1 > limit {
				t.Fatalf("grant %d at %v exceeds rate*t+burst=%d", i+1, at, limit)
			}
		}
		want := time.Duration(float64(3200-burst) / rate * 1e9)
		if got := time.Since(start); got != want {
			t.Fatalf("3200 grants took %v, want %v", got, want)
		}
	})
}

func TestReject(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithRate(10), WithBurst(2), WithMode(ModeReject))
		if err := l.Reserve(); err != nil {
			t.Fatalf("first: %v", err)
		}
		if err := l.Reserve(); err != nil {
			t.Fatalf("second: %v", err)
		}
		err := l.Reserve()
		var le *LimitedError
		if !errors.As(err, &le) || !errors.Is(err, ErrLimited) {
			t.Fatalf("third: got %v, want *LimitedError", err)
		}
		if got, want := le.RetryAfter(), 100*time.Millisecond; got != want {
			t.Fatalf("RetryAfter got %v want %v", got, want)
		}
		time.Sleep(le.RetryAfter())
		if err := l.Reserve(); err != nil {
			t.Fatalf("after RetryAfter: %v", err)
		}
	})
}

func TestSetRateReschedulesWaiters(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithRate(0))
		var done atomic.Int32
		for i := 0; i < 3; i++ {
			go func() {
				if err := l.Wait(context.Background()); err == nil {
					done.Add(1)
				}
			}()
		}
		testkit.Advance(time.Hour)
		if got := done.Load(); got != 0 {
			t.Fatalf("rate 0 admitted %d", got)
		}
		l.SetRate(10) // full bucket of 1, then 100ms spacing
		testkit.Advance(0)
		if got := done.Load(); got != 1 {
			t.Fatalf("after SetRate got %d want 1", got)
		}
		testkit.Advance(200 * time.Millisecond)
		if got := done.Load(); got != 3 {
			t.Fatalf("after 200ms got %d want 3", got)
		}
		if got := l.Rate(); got != 10 {
			t.Fatalf("Rate got %v", got)
		}
		l.SetRate(math.Inf(1))
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
