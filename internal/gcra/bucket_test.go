package gcra

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLateWakeupCatchUp drives the bucket with a clock whose releases come
// late, as a coarse timer does, and checks that a sequential burst-1
// consumer keeps the rate (catch-up) and that strict mode does not.
func TestLateWakeupCatchUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		catchUp time.Duration
		want    int
	}{
		{"catch-up keeps the rate", 50 * time.Millisecond, 1000},
		{"strict spacing loses time", 0, 167},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(false, 10000, 1, tc.catchUp)
			// A consumer that asks for a permit, and when it must wait is
			// woken 500us late (simulated: now jumps past the slot).
			now := 0.0
			n := 0
			for now < 1e8 { // 100ms
				b.mu.Lock()
				if _, ok := b.tryLocked(now); ok {
					n++
					b.mu.Unlock()
					continue
				}
				slot := b.estimate(now)
				w := &waiter{ch: make(chan struct{}, 1), deadline: math.Inf(1)}
				b.pushLocked(w)
				now = slot + 500e3 // late wake-up
				b.releaseLocked(now)
				b.mu.Unlock()
				if w.state != stateGranted {
					t.Fatalf("waiter not granted at %v", now)
				}
				n++
			}
			if n < tc.want-2 || n > tc.want+2 {
				t.Fatalf("admitted %d in 100ms at 10000/s, want about %d", n, tc.want)
			}
		})
	}
}

// TestTake: Take paces at the rate, ends with the context or its deadline,
// and fails after Close.
func TestTake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(false, 10, 1, 0)
		defer b.Close()
		ctx := context.Background()
		start := time.Now()
		for range 3 {
			if err := b.Take(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(start); got != 200*time.Millisecond {
			t.Errorf("3 permits at 10/s took %s, want 200ms", got)
		}
		dctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		if err := b.Take(dctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("slot after the deadline: got %v, want DeadlineExceeded", err)
		}
		b.SetRate(math.Inf(1))
		if err := b.Take(ctx); err != nil || !b.Fast() {
			t.Errorf("unlimited: got %v, fast %v", err, b.Fast())
		}
		b.Close()
		if err := b.Take(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("after Close: got %v, want ErrClosed", err)
		}
	})
}

// TestUpdate: a rate change keeps the permits owed and reschedules waiters.
func TestUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(false, 1, 1, 0)
		defer b.Close()
		if _, r := b.Try(); !r.OK() {
			t.Fatal("first permit refused")
		}
		done := make(chan time.Duration)
		start := time.Now()
		go func() {
			b.Wait(context.Background(), 0)
			done <- time.Since(start)
		}()
		synctest.Wait()
		b.Update(func(s *State) bool { s.Rate = 10; return true })
		if got := <-done; got > 100*time.Millisecond {
			t.Errorf("waiter served after %s at the new rate, want within 100ms", got)
		}
		if s := b.Snapshot(); s.Rate != 10 || s.Granted != 2 {
			t.Errorf("snapshot %+v, want rate 10 and 2 granted", s)
		}
		b.Update(func(s *State) bool { return false })
		if !b.AtRest() {
			time.Sleep(time.Second)
		}
		if !b.AtRest() {
			t.Error("bucket not at rest after a second idle")
		}
	})
}

// TestWaitReportsTheWait: a permit free at once reports a wait of 0, one
// granted after queueing how long it waited, so a caller bounding several
// waits together needs no clock of its own.
func TestWaitReportsTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(false, 10, 1, 0)
		defer b.Close()
		ctx := context.Background()
		if _, r := b.Wait(ctx, 0); !r.OK() || r.Wait != 0 {
			t.Fatalf("free permit: got %+v, want granted with no wait", r)
		}
		start := time.Now()
		_, r := b.Wait(ctx, 0)
		if !r.OK() || time.Duration(r.Wait) != time.Since(start) || r.Wait != float64(100*time.Millisecond) {
			t.Errorf("queued permit: got %+v after %s, want granted with a wait of 100ms", r, time.Since(start))
		}
	})
}
