package breaker_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/testkit"
)

// recorder is a handler that records when it was called; each call takes
// 1ms so that workers in a synctest bubble let fake time advance.
type recorder struct {
	mu   sync.Mutex
	at   []time.Time
	fail bool
}

func (r *recorder) handle(*message.Message) ([]*message.Message, error) {
	r.mu.Lock()
	r.at = append(r.at, time.Now())
	fail := r.fail
	r.mu.Unlock()
	time.Sleep(time.Millisecond)
	if fail {
		return nil, errDown
	}
	return nil, nil
}

func (r *recorder) setFail(v bool) { r.mu.Lock(); r.fail = v; r.mu.Unlock() }

// between counts calls in [from, to).
func (r *recorder) between(from, to time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.at {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return n
}

// expectedAdmitted integrates rate*RampFraction over [a, b) after the start
// of a drain.
func expectedAdmitted(rate float64, a, b, window time.Duration, start, aggr float64) float64 {
	const steps = 1000
	dt := (b - a) / steps
	sum := 0.0
	for i := range steps {
		t := a + dt*time.Duration(i) + dt/2
		sum += rate * breaker.RampFraction(t, window, start, aggr) * dt.Seconds()
	}
	return sum
}

// flood runs n workers calling h until ctx ends.
func flood(ctx context.Context, h message.HandlerFunc, n int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				msg := newMsg()
				msg.SetContext(ctx)
				_, _ = h(msg)
			}
		})
	}
	return &wg
}

// trip fails one call, waits out the open period and lets one probe close
// the breaker; it returns the time the breaker closed (the drain's start).
func tripAndRecover(t *testing.T, b *breaker.Breaker, h message.HandlerFunc, r *recorder, openFor time.Duration) time.Time {
	t.Helper()
	r.setFail(true)
	_ = call(t, h)
	wantState(t, b, breaker.StateOpen)
	r.setFail(false)
	time.Sleep(openFor + time.Millisecond)
	if err := call(t, h); err != nil {
		t.Fatalf("probe: %v", err)
	}
	wantState(t, b, breaker.StateClosed)
	// The probe took 1ms; the breaker closed when it returned.
	return time.Now()
}

// TestRampShape: after recovery, admitted counts per interval follow
// rate * max(start, (elapsed/window)^(1/aggression)).
func TestRampShape(t *testing.T) {
	tests := []struct {
		name        string
		start, aggr float64
		interval    time.Duration
		tolerance   float64 // relative, per interval
		backlog     int     // messages all waiting at once instead of 8 busy workers
		separate    bool    // drain in DrainMiddleware (WithSeparateDrain)
	}{
		{"linear per 1s", 0.1, 1, time.Second, 0.05, 0, false},
		{"aggressive per 1s", 0.1, 2, time.Second, 0.05, 0, false},
		{"gentle start 25% per 1s", 0.25, 0.5, time.Second, 0.05, 0, false},
		{"linear per 100ms", 0.1, 1, 100 * time.Millisecond, 0.15, 0, false},
		{"backlog queued at once, per 1s", 0.1, 1, time.Second, 0.05, 1500, false},
		{"backlog queued at once, per 100ms", 0.1, 1, 100 * time.Millisecond, 0.15, 1500, false},
		{"separate drain middleware per 1s", 0.1, 1, time.Second, 0.05, 0, true},
		{"separate drain middleware, backlog, per 100ms", 0.1, 1, 100 * time.Millisecond, 0.15, 1500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				const rate, window, openFor = 200.0, 10 * time.Second, time.Second
				opts := []breaker.Option{breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(openFor),
					breaker.WithDrain(window, tt.start, tt.aggr), breaker.WithDrainRate(rate)}
				if tt.separate {
					opts = append(opts, breaker.WithSeparateDrain())
				}
				b := mustNew(t, opts...)
				r := &recorder{}
				h := b.Middleware(b.DrainMiddleware(r.handle))
				t0 := tripAndRecover(t, b, h, r, openFor)
				if got := b.DrainProgress(); got != tt.start {
					t.Fatalf("progress at start: got %v, want %v", got, tt.start)
				}

				ctx, cancel := context.WithCancel(context.Background())
				var wg *sync.WaitGroup
				if tt.backlog > 0 {
					wg = &sync.WaitGroup{}
					for range tt.backlog {
						wg.Go(func() { _ = call(t, h) })
					}
					wg.Wait() // the rest of the backlog goes through when the drain ends
					wg = flood(ctx, h, 8)
					time.Sleep(time.Until(t0.Add(window + 2*time.Second)))
				} else {
					wg = flood(ctx, h, 8)
					time.Sleep(window + 2*time.Second)
				}
				cancel()
				wg.Wait()

				for a := time.Duration(0); a < window; a += tt.interval {
					got := float64(r.between(t0.Add(a), t0.Add(a+tt.interval)))
					want := expectedAdmitted(rate, a, a+tt.interval, window, tt.start, tt.aggr)
					t.Logf("[%s, %s): admitted %v, schedule %.1f", a, a+tt.interval, got, want)
					if math.Abs(got-want) > math.Max(tt.tolerance*want, 1.5) {
						t.Errorf("[%s, %s): admitted %v, want %.1f ±%.0f%%", a, a+tt.interval, got, want, tt.tolerance*100)
					}
				}
				// After the window the drain is over: no limit (8 workers, 1ms each).
				if got := r.between(t0.Add(window+time.Second), t0.Add(window+2*time.Second)); got < 7000 {
					t.Errorf("after the drain: admitted %d in 1s, want the handler's full pace (~8000)", got)
				}
				if got := b.DrainProgress(); got != 1 {
					t.Errorf("progress after the drain: got %v, want 1", got)
				}
			})
		})
	}
}

// TestRetripRestartsDrain: a trip during the drain restarts the cycle from
// start, with the baseline measured before the first trip.
func TestRetripRestartsDrain(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		const openFor = time.Second
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(openFor),
			breaker.WithDrain(10*time.Second, 0.2, 1))
		r := &recorder{}
		h := b.Middleware(r.handle)

		// Observe 10s of a single worker at 1ms per call: 1000/s.
		ctx, cancel := context.WithCancel(context.Background())
		wg := flood(ctx, h, 1)
		time.Sleep(10 * time.Second)
		cancel()
		wg.Wait()
		tripAndRecover(t, b, h, r, openFor)
		base := b.Baseline()
		if base < 900 || base > 1000 {
			t.Fatalf("baseline: got %.1f/s, want about 1000/s", base)
		}
		time.Sleep(5 * time.Second)
		if got := b.DrainProgress(); math.Abs(got-0.5) > 0.01 {
			t.Fatalf("progress after 5s: got %v, want 0.5", got)
		}
		// Trip again mid-drain: the drain restarts; the baseline stays.
		tripAndRecover(t, b, h, r, openFor)
		if got := b.DrainProgress(); got != 0.2 {
			t.Fatalf("progress after the second recovery: got %v, want the start 0.2", got)
		}
		if got := b.Baseline(); got != base {
			t.Fatalf("baseline after a trip during the drain: got %v, want %v", got, base)
		}
	})
}

// TestDrainWithoutBaseline: nothing observed and no rate: no drain.
func TestDrainWithoutBaseline(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(time.Second),
			breaker.WithDrain(10*time.Second, 0.1, 1))
		r := &recorder{}
		h := b.Middleware(r.handle)
		tripAndRecover(t, b, h, r, time.Second)
		if got := b.DrainProgress(); got != 1 {
			t.Fatalf("progress: got %v, want 1 (no drain without a baseline)", got)
		}
	})
}

// TestDrainMaxHold: a drain wait that would outlast the max hold Nacks at
// once with an *OpenError.
func TestDrainMaxHold(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(time.Second),
			breaker.WithDrain(10*time.Second, 0.1, 1), breaker.WithDrainRate(10), breaker.WithMaxHold(500*time.Millisecond))
		r := &recorder{}
		h := b.Middleware(r.handle)
		tripAndRecover(t, b, h, r, time.Second)
		// 1/s at the start of the drain: the first takes the token, the
		// second would wait about 1s.
		if err := call(t, h); err != nil {
			t.Fatalf("first: %v", err)
		}
		start := time.Now()
		err := call(t, h)
		if !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("second: got %v, want ErrOpen", err)
		}
		if waited := time.Since(start); waited > 500*time.Millisecond {
			t.Fatalf("waited %s, want at most the max hold", waited)
		}
	})
}

// TestDrainShared: two handlers sharing a breaker share its drain: their
// combined admissions follow the schedule.
func TestDrainShared(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		const rate, window, openFor = 100.0, 5 * time.Second, time.Second
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(openFor),
			breaker.WithDrain(window, 0.2, 1), breaker.WithDrainRate(rate))
		r1, r2 := &recorder{}, &recorder{}
		h1, h2 := b.Middleware(r1.handle), b.Middleware(r2.handle)
		t0 := tripAndRecover(t, b, h1, r1, openFor)
		ctx, cancel := context.WithCancel(context.Background())
		wg1, wg2 := flood(ctx, h1, 4), flood(ctx, h2, 4)
		time.Sleep(window)
		cancel()
		wg1.Wait()
		wg2.Wait()
		for a := time.Duration(0); a < window; a += time.Second {
			n1, n2 := r1.between(t0.Add(a), t0.Add(a+time.Second)), r2.between(t0.Add(a), t0.Add(a+time.Second))
			want := expectedAdmitted(rate, a, a+time.Second, window, 0.2, 1)
			if got := float64(n1 + n2); math.Abs(got-want) > math.Max(0.05*want, 1.5) {
				t.Errorf("[%s, +1s): admitted %d+%d, want %.1f in total", a, n1, n2, want)
			}
			if n1 == 0 || n2 == 0 {
				t.Errorf("[%s, +1s): admitted %d and %d, want both handlers served", a, n1, n2)
			}
		}
	})
}

// TestDrainMiddlewarePassThrough: without WithSeparateDrain, DrainMiddleware
// returns the handler itself (Middleware does the waiting).
func TestDrainMiddlewarePassThrough(t *testing.T) {
	b := mustNew(t, breaker.WithDrain(time.Second, 0.1, 1))
	called := false
	h := b.DrainMiddleware(func(*message.Message) ([]*message.Message, error) { called = true; return nil, nil })
	if _, err := h(newMsg()); err != nil || !called {
		t.Fatalf("got err=%v called=%v", err, called)
	}
	if _, err := breaker.New(breaker.WithSeparateDrain(), breaker.WithSlowCall(time.Second, 0)); !errors.Is(err, breaker.ErrInvalidConfig) {
		t.Fatalf("separate drain with slow calls: got %v, want ErrInvalidConfig", err)
	}
}

// TestDrainPastMaxHoldAsksToComeBackLater: a message whose slot in the
// drain comes after its max hold is deferred at once, and its OpenError
// asks for the wait to that slot (RetryAfter). With RetryAfter 0, a
// transport that redelivers at once (RabbitMQ) spun it through the breaker
// until the drain caught up: about 46 deferrals a second in
// TestTelemetryUnderCombinedFaults.
func TestDrainPastMaxHoldAsksToComeBackLater(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		const openFor = time.Second
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(openFor),
			breaker.WithDrain(10*time.Second, 0.1, 1), breaker.WithDrainRate(10), breaker.WithMaxHold(500*time.Millisecond))
		r := &recorder{}
		h := b.Middleware(r.handle)
		tripAndRecover(t, b, h, r, openFor)
		// The drain admits 1/s: the first message takes the free slot,
		// the second's slot is about 1s away, past the 500ms hold.
		if err := call(t, h); err != nil {
			t.Fatalf("first message: %v", err)
		}
		start := time.Now()
		err := call(t, h)
		var oe *breaker.OpenError
		if !errors.As(err, &oe) {
			t.Fatalf("second message: got %v, want an *OpenError", err)
		}
		if held := time.Since(start); held != 0 {
			t.Errorf("held %s, want an immediate deferral (its slot is past the hold)", held)
		}
		if oe.RetryAfter() < 500*time.Millisecond || oe.RetryAfter() > 1100*time.Millisecond {
			t.Errorf("RetryAfter %s, want the wait to its slot (about 1s)", oe.RetryAfter())
		}
	})
}
