package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
)

func TestMain(m *testing.M) { testkit.VerifyMain(m) }

var errDown = errors.New("downstream unavailable")

// classErr is an error with a Levee error class.
type classErr struct{ class string }

func (e classErr) Error() string      { return e.class + " error" }
func (e classErr) ErrorClass() string { return e.class }

// downstream is a fake dependency: it fails while down, and can hold calls
// until released.
type downstream struct {
	mu    sync.Mutex
	down  bool
	calls int
	gate  chan struct{} // when not nil, calls wait for it to be closed
	delay time.Duration
	err   error // returned while down; errDown when nil
}

func (d *downstream) setDown(v bool) { d.mu.Lock(); d.down = v; d.mu.Unlock() }

func (d *downstream) Calls() int { d.mu.Lock(); defer d.mu.Unlock(); return d.calls }

func (d *downstream) handle(msg *message.Message) ([]*message.Message, error) {
	d.mu.Lock()
	d.calls++
	down, gate, delay, err := d.down, d.gate, d.delay, d.err
	d.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if down {
		if err == nil {
			err = errDown
		}
		return nil, err
	}
	return nil, nil
}

func newMsg() *message.Message { return message.NewMessage(watermill.NewUUID(), nil) }

// async runs h on a new message in a goroutine.
type async struct {
	done chan struct{}
	err  error
}

func goCall(h message.HandlerFunc, msg *message.Message) *async {
	a := &async{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		_, a.err = h(msg)
	}()
	return a
}

func (a *async) finished() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

type hookLog struct {
	mu  sync.Mutex
	log []string
}

func (h *hookLog) hook(from, to breaker.State) {
	h.mu.Lock()
	h.log = append(h.log, from.String()+"->"+to.String())
	h.mu.Unlock()
}

func (h *hookLog) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log...)
}

func mustNew(t *testing.T, opts ...breaker.Option) *breaker.Breaker {
	t.Helper()
	b, err := breaker.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func call(t *testing.T, h message.HandlerFunc) error {
	t.Helper()
	_, err := h(newMsg())
	return err
}

func wantState(t *testing.T, b *breaker.Breaker, want breaker.State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("state: got %s, want %s", got, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestTransitions walks every state transition and checks the hooks saw
// them in order.
func TestTransitions(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		hooks := &hookLog{}
		b := mustNew(t, breaker.WithConsecutiveFailures(3), breaker.WithOpenFor(5*time.Second),
			breaker.WithOnStateChange(hooks.hook))
		d := &downstream{}
		h := b.Middleware(d.handle)

		wantState(t, b, breaker.StateClosed)
		d.setDown(true)
		for i := range 3 {
			if err := call(t, h); !errors.Is(err, errDown) {
				t.Fatalf("call %d: got %v, want errDown", i, err)
			}
		}
		wantState(t, b, breaker.StateOpen) // closed -> open

		// While open, a message waits and the handler is not called.
		a := goCall(h, newMsg())
		testkit.Advance(4 * time.Second)
		if a.finished() || d.Calls() != 3 {
			t.Fatalf("open: finished=%v calls=%d, want waiting and 3 calls", a.finished(), d.Calls())
		}
		// After open_for the waiter becomes the probe (open -> half-open); it
		// fails (half-open -> open).
		testkit.Advance(time.Second)
		<-a.done
		if !errors.Is(a.err, errDown) || d.Calls() != 4 {
			t.Fatalf("probe: err=%v calls=%d, want errDown and 4 calls", a.err, d.Calls())
		}
		wantState(t, b, breaker.StateOpen)

		// Next probe succeeds: half-open -> closed.
		d.setDown(false)
		a = goCall(h, newMsg())
		testkit.Advance(5 * time.Second)
		<-a.done
		if a.err != nil {
			t.Fatalf("probe: got %v, want nil", a.err)
		}
		wantState(t, b, breaker.StateClosed)

		// The half-open state itself, observed without any message.
		d.setDown(true)
		for range 3 {
			_ = call(t, h)
		}
		testkit.Advance(5*time.Second + time.Millisecond)
		wantState(t, b, breaker.StateHalfOpen)

		want := []string{"closed->open", "open->half-open", "half-open->open", "open->half-open", "half-open->closed", "closed->open", "open->half-open"}
		if got := hooks.get(); !equal(got, want) {
			t.Fatalf("hooks: got %v, want %v", got, want)
		}
	})
}

// TestWaitsEndAtHalfOpen: N messages wait while open; at half-open exactly
// the probes go through, the others keep waiting, and they all pass once the
// probes succeed.
func TestWaitsEndAtHalfOpen(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(time.Second), breaker.WithHalfOpenProbes(2))
		d := &downstream{}
		h := b.Middleware(d.handle)
		d.setDown(true)
		_ = call(t, h)
		wantState(t, b, breaker.StateOpen)
		d.setDown(false)

		gate := make(chan struct{})
		d.mu.Lock()
		d.gate = gate
		d.mu.Unlock()
		var waiters []*async
		for range 5 {
			waiters = append(waiters, goCall(h, newMsg()))
		}
		testkit.Advance(500 * time.Millisecond)
		if got := d.Calls(); got != 1 {
			t.Fatalf("open: calls got %d, want 1 (no handler call while open)", got)
		}
		testkit.Advance(500*time.Millisecond + time.Millisecond)
		if got := d.Calls(); got != 3 {
			t.Fatalf("half-open: calls got %d, want 3 (1 + 2 probes)", got)
		}
		wantState(t, b, breaker.StateHalfOpen)
		d.mu.Lock()
		d.gate = nil
		d.mu.Unlock()
		close(gate)
		for i, a := range waiters {
			<-a.done
			if a.err != nil {
				t.Fatalf("waiter %d: got %v, want nil", i, a.err)
			}
		}
		if got := d.Calls(); got != 6 {
			t.Fatalf("calls got %d, want 6", got)
		}
		wantState(t, b, breaker.StateClosed)
	})
}

// TestMaxHold: a wait longer than the max hold ends in an *OpenError that
// wraps ErrOpen and carries RetryAfter; the handler is not called.
func TestMaxHold(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(10*time.Second), breaker.WithMaxHold(3*time.Second))
		d := &downstream{}
		h := b.Middleware(d.handle)
		d.setDown(true)
		_ = call(t, h)
		start := time.Now()
		err := call(t, h)
		if held := time.Since(start); held != 3*time.Second {
			t.Fatalf("held: got %s, want 3s", held)
		}
		if !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("got %v, want ErrOpen", err)
		}
		var oe *breaker.OpenError
		if !errors.As(err, &oe) {
			t.Fatalf("got %T, want *OpenError", err)
		}
		var ra interface{ RetryAfter() time.Duration }
		if !errors.As(err, &ra) || ra.RetryAfter() != 7*time.Second {
			t.Fatalf("RetryAfter: got %v, want 7s", oe.After)
		}
		if d.Calls() != 1 {
			t.Fatalf("calls: got %d, want 1", d.Calls())
		}
		// In half-open with the probe taken, the retry-after is zero.
		testkit.Advance(7*time.Second + time.Millisecond)
		gate := make(chan struct{})
		d.mu.Lock()
		d.gate = gate
		d.mu.Unlock()
		probe := goCall(h, newMsg())
		synctest.Wait()
		err = call(t, h)
		if !errors.As(err, &oe) || oe.State != breaker.StateHalfOpen || oe.After != 0 {
			t.Fatalf("half-open max hold: got %v", err)
		}
		close(gate)
		<-probe.done
	})
}

// TestWaitEnds: a wait ends with the message context and with Close.
func TestWaitEnds(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b, err := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		d := &downstream{}
		h := b.Middleware(d.handle)
		d.setDown(true)
		_ = call(t, h)

		ctx, cancel := context.WithCancel(context.Background())
		msg := newMsg()
		msg.SetContext(ctx)
		a := goCall(h, msg)
		synctest.Wait()
		cancel()
		<-a.done
		if !errors.Is(a.err, context.Canceled) {
			t.Fatalf("canceled: got %v, want context.Canceled", a.err)
		}

		a = goCall(h, newMsg())
		synctest.Wait()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		<-a.done
		if !errors.Is(a.err, breaker.ErrClosed) {
			t.Fatalf("close: got %v, want ErrClosed", a.err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if d.Calls() != 1 {
			t.Fatalf("calls: got %d, want 1", d.Calls())
		}
	})
}

// TestClassification: only downstream failures count.
func TestClassification(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		opts  []breaker.Option
		trips bool
	}{
		{"transient", errDown, nil, true},
		{"explicit transient class", classErr{"transient"}, nil, true},
		{"exhausted class", classErr{"exhausted"}, nil, true},
		{"permanent", classErr{"permanent"}, nil, false},
		{"wrapped validation", fmt.Errorf("bad: %w", classErr{"validation"}), nil, false},
		{"context canceled", fmt.Errorf("x: %w", context.Canceled), nil, false},
		{"deadline exceeded counts", context.DeadlineExceeded, nil, true},
		{"IsSuccessful hook", errDown, []breaker.Option{breaker.WithIsSuccessful(func(err error) bool { return errors.Is(err, errDown) })}, false},
		{"IsExcluded hook", errDown, []breaker.Option{breaker.WithIsExcluded(func(err error) bool { return errors.Is(err, errDown) })}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustNew(t, append([]breaker.Option{breaker.WithConsecutiveFailures(3)}, tt.opts...)...)
			h := b.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, tt.err })
			for i := range 3 {
				if err := call(t, h); err != tt.err {
					t.Fatalf("call %d: got %v, want the handler's error %v", i, err, tt.err)
				}
			}
			if got := b.State() == breaker.StateOpen; got != tt.trips {
				t.Fatalf("tripped: got %v, want %v (counts %+v)", got, tt.trips, b.Counts())
			}
		})
	}
}

func panicHandler(*message.Message) ([]*message.Message, error) { panic("boom") }

// TestPanic: a panic counts as a failure and reaches Recover outside.
func TestPanic(t *testing.T) {
	for _, tt := range []struct {
		name      string
		opts      []breaker.Option
		fullStack bool // Recover's stack shows the panicking handler
	}{
		{"fast path", []breaker.Option{breaker.WithConsecutiveFailures(2)}, true},
		{"counted path", []breaker.Option{breaker.WithConsecutiveFailures(2), breaker.WithFailureRatio(0.9, 50)}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := mustNew(t, tt.opts...)
			h := middleware.Recover(b.Middleware(panicHandler))
			for i := range 2 {
				_, err := h(newMsg())
				var pe *levee.PanicError
				if !errors.As(err, &pe) || pe.Value != "boom" {
					t.Fatalf("call %d: got %v, want a *PanicError(boom) from Recover", i, err)
				}
				if tt.fullStack && !strings.Contains(string(pe.Stack), "breaker_test.panicHandler") {
					t.Fatalf("call %d: stack does not show the panicking handler:\n%s", i, pe.Stack)
				}
			}
			wantState(t, b, breaker.StateOpen)
		})
	}
}

// TestFailureRatio: the ratio policy waits for min_requests in the window.
func TestFailureRatio(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithFailureRatio(0.5, 10), breaker.WithWindow(10*time.Second))
		d := &downstream{}
		h := b.Middleware(d.handle)
		for range 5 {
			_ = call(t, h)
		}
		d.setDown(true)
		for range 4 {
			_ = call(t, h)
		}
		wantState(t, b, breaker.StateClosed) // 4/9, below min requests
		_ = call(t, h)
		wantState(t, b, breaker.StateOpen) // 5/10
	})
	testkit.Synctest(t, func(t *testing.T) {
		// Old successes roll out of the window.
		b := mustNew(t, breaker.WithFailureRatio(0.5, 4), breaker.WithWindow(10*time.Second))
		d := &downstream{}
		h := b.Middleware(d.handle)
		for range 10 {
			_ = call(t, h)
		}
		time.Sleep(11 * time.Second)
		d.setDown(true)
		for range 3 {
			_ = call(t, h)
		}
		wantState(t, b, breaker.StateClosed) // 3 calls in the window
		_ = call(t, h)
		wantState(t, b, breaker.StateOpen)
	})
}

// TestFailureRatioCountsEverySuccess: successes the fast path does not
// report to the machine (a success after a success) still count in the ratio,
// in the rolling window, and only in the current generation.
func TestFailureRatioCountsEverySuccess(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		// Two successes per failure stay below 0.5 however long it runs.
		b := mustNew(t, breaker.WithFailureRatio(0.5, 10), breaker.WithWindow(10*time.Second), breaker.WithConsecutiveFailures(0))
		d := &downstream{}
		h := b.Middleware(d.handle)
		for range 30 {
			for range 2 {
				_ = call(t, h)
			}
			d.setDown(true)
			_ = call(t, h)
			d.setDown(false)
			time.Sleep(100 * time.Millisecond)
		}
		wantState(t, b, breaker.StateClosed)
		c := b.Counts()
		if c.TotalSuccesses != 60 || c.TotalFailures != 30 || c.Requests != 90 {
			t.Fatalf("counts: got %+v, want 60 successes, 30 failures, 90 requests", c)
		}
		// 60 successes: the 60th failure reaches 0.5, not one earlier.
		d.setDown(true)
		for range 29 {
			_ = call(t, h)
		}
		wantState(t, b, breaker.StateClosed) // 59/119
		_ = call(t, h)
		wantState(t, b, breaker.StateOpen) // 60/120
	})
	testkit.Synctest(t, func(t *testing.T) {
		// Window 10 s in 1 s buckets: successes older than the window leave it.
		b := mustNew(t, breaker.WithFailureRatio(0.5, 4), breaker.WithWindow(10*time.Second), breaker.WithConsecutiveFailures(0))
		d := &downstream{}
		h := b.Middleware(d.handle)
		for range 6 {
			_ = call(t, h) // t=0: rolls out at t=10 s
		}
		time.Sleep(6 * time.Second)
		for range 2 {
			_ = call(t, h) // t=6 s: still in the window at t=10.5 s
		}
		time.Sleep(4500 * time.Millisecond)
		if got := b.Counts().TotalSuccesses; got != 2 {
			t.Fatalf("successes in the window: got %d, want 2", got)
		}
		d.setDown(true)
		_ = call(t, h)
		wantState(t, b, breaker.StateClosed) // 1/3, below min requests
		_ = call(t, h)
		wantState(t, b, breaker.StateOpen) // 2/4
	})
	testkit.Synctest(t, func(t *testing.T) {
		// A new generation starts from zero: successes before a trip do not
		// dilute failures after the recovery.
		b := mustNew(t, breaker.WithFailureRatio(0.5, 4), breaker.WithWindow(time.Minute),
			breaker.WithConsecutiveFailures(2), breaker.WithOpenFor(time.Second), breaker.WithHalfOpenProbes(1))
		d := &downstream{}
		h := b.Middleware(d.handle)
		for range 50 {
			_ = call(t, h)
		}
		d.setDown(true)
		for range 2 {
			_ = call(t, h)
		}
		wantState(t, b, breaker.StateOpen) // two consecutive failures
		time.Sleep(1100 * time.Millisecond)
		d.setDown(false)
		_ = call(t, h) // the probe closes it
		wantState(t, b, breaker.StateClosed)
		for range 2 {
			_ = call(t, h)
		}
		if got := b.Counts().TotalSuccesses; got != 2 {
			t.Fatalf("successes after the recovery: got %d, want 2 (the 50 before the trip must not count)", got)
		}
	})
}

// TestSlowCall: slow calls count as failures; the slow ratio trips.
func TestSlowCall(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithConsecutiveFailures(3), breaker.WithSlowCall(time.Second, 0))
		d := &downstream{delay: 2 * time.Second}
		h := b.Middleware(d.handle)
		for i := range 3 {
			if err := call(t, h); err != nil {
				t.Fatalf("call %d: got %v, want the handler's nil", i, err)
			}
		}
		wantState(t, b, breaker.StateOpen)
	})
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithSlowCall(time.Second, 0.5), breaker.WithFailureRatio(0, 4), breaker.WithConsecutiveFailures(0))
		d := &downstream{}
		h := b.Middleware(d.handle)
		for range 2 {
			_ = call(t, h)
		}
		d.mu.Lock()
		d.delay = 1500 * time.Millisecond
		d.mu.Unlock()
		_ = call(t, h)
		wantState(t, b, breaker.StateClosed) // 1 slow of 3 calls < min requests
		_ = call(t, h)
		wantState(t, b, breaker.StateOpen) // 2 slow of 4
	})
}

// TestForce: the operator's kill switch.
func TestForce(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		hooks := &hookLog{}
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOnStateChange(hooks.hook))
		d := &downstream{}
		h := b.Middleware(d.handle)

		b.ForceOpen()
		wantState(t, b, breaker.StateOpen)
		a := goCall(h, newMsg())
		testkit.Advance(time.Hour)
		if a.finished() || d.Calls() != 0 {
			t.Fatalf("forced open: finished=%v calls=%d, want waiting, 0 calls", a.finished(), d.Calls())
		}
		b.ClearForce()
		<-a.done
		if a.err != nil || d.Calls() != 1 {
			t.Fatalf("cleared: err=%v calls=%d", a.err, d.Calls())
		}

		b.ForceClosed()
		d.setDown(true)
		for range 5 {
			_ = call(t, h)
		}
		wantState(t, b, breaker.StateClosed)
		if b.Forced() != breaker.ForceClosed || d.Calls() != 6 {
			t.Fatalf("forced closed: force=%s calls=%d", b.Forced(), d.Calls())
		}
		b.ClearForce()
		wantState(t, b, breaker.StateClosed) // forced-closed failures were not counted
		_ = call(t, h)
		wantState(t, b, breaker.StateOpen)
		want := []string{"closed->open", "open->closed", "closed->open"}
		if got := hooks.get(); !equal(got, want) {
			t.Fatalf("hooks: got %v, want %v", got, want)
		}
	})
}

// TestHooksOutsideLock: a hook may call back into the breaker.
func TestHooksOutsideLock(t *testing.T) {
	var b *breaker.Breaker
	var seen []breaker.State
	b = mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOnStateChange(func(from, to breaker.State) {
		seen = append(seen, b.State())
		if to == breaker.StateOpen && b.Forced() == breaker.ForceNone {
			b.ForceClosed()
		}
	}))
	h := b.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errDown })
	_ = call(t, h)
	if b.Forced() != breaker.ForceClosed {
		t.Fatalf("force: got %s, want closed (set by the hook)", b.Forced())
	}
	if len(seen) != 2 || seen[0] != breaker.StateOpen || seen[1] != breaker.StateClosed {
		t.Fatalf("states seen by hooks: got %v", seen)
	}
}

// TestShared: one breaker shared by two handlers trips and recovers for both.
func TestShared(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		b := mustNew(t, breaker.WithConsecutiveFailures(3), breaker.WithOpenFor(2*time.Second))
		payments, shipping := &downstream{}, &downstream{}
		hp, hs := b.Middleware(payments.handle), b.Middleware(shipping.handle)
		payments.setDown(true)
		for range 3 {
			_ = call(t, hp)
		}
		wantState(t, b, breaker.StateOpen)
		// The other handler pauses too.
		a := goCall(hs, newMsg())
		testkit.Advance(time.Second)
		if a.finished() || shipping.Calls() != 0 {
			t.Fatalf("shipping while open: finished=%v calls=%d", a.finished(), shipping.Calls())
		}
		payments.setDown(false)
		testkit.Advance(time.Second)
		<-a.done
		if a.err != nil || shipping.Calls() != 1 {
			t.Fatalf("shipping after recovery: err=%v calls=%d", a.err, shipping.Calls())
		}
		wantState(t, b, breaker.StateClosed)
		// Failures of both handlers add up.
		shipping.setDown(true)
		payments.setDown(true)
		_ = call(t, hp)
		_ = call(t, hs)
		wantState(t, b, breaker.StateClosed)
		_ = call(t, hp)
		wantState(t, b, breaker.StateOpen)
	})
}

// TestNoCallbackDeadlock runs concurrent traffic with hooks that call back,
// under the race detector.
func TestConcurrent(t *testing.T) {
	var flips atomic.Int64
	var b *breaker.Breaker
	b = mustNew(t, breaker.WithConsecutiveFailures(2), breaker.WithOpenFor(time.Millisecond),
		breaker.WithMaxHold(50*time.Millisecond),
		breaker.WithOnStateChange(func(from, to breaker.State) { flips.Add(1); _ = b.State() }))
	var n atomic.Int64
	h := b.Middleware(func(*message.Message) ([]*message.Message, error) {
		if n.Add(1)%3 != 0 {
			return nil, errDown
		}
		return nil, nil
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 300 {
				_, err := h(newMsg())
				if err != nil && !errors.Is(err, errDown) && !errors.Is(err, breaker.ErrOpen) {
					t.Errorf("unexpected error %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if flips.Load() == 0 {
		t.Fatalf("no state change under a failure rate of 2/3")
	}
}

// TestStreak: a success resets the consecutive failures, on the fast path
// (consecutive policy only) and the counted path (with a ratio policy too).
func TestStreak(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []breaker.Option
	}{
		{"consecutive only", []breaker.Option{breaker.WithConsecutiveFailures(3)}},
		{"with ratio", []breaker.Option{breaker.WithConsecutiveFailures(3), breaker.WithFailureRatio(0.9, 100)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := mustNew(t, tt.opts...)
			d := &downstream{}
			h := b.Middleware(d.handle)
			for _, down := range []bool{true, true, false, false, true, true, false, true, true} {
				d.setDown(down)
				_ = call(t, h)
				wantState(t, b, breaker.StateClosed)
			}
			_ = call(t, h)
			wantState(t, b, breaker.StateOpen)
		})
	}
}
