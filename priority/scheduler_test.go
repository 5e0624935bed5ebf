package priority_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/priority"
)

type arrival struct {
	name string
	p    int
	at   time.Duration // since the start of the test, fake time
}

// runArrivals holds the only slot, enqueues the arrivals at their times,
// releases the slot at releaseAt and returns the grant order.
func runArrivals(t *testing.T, opts []priority.Option, arrivals []arrival, releaseAt time.Duration) []string {
	t.Helper()
	s := newScheduler(t, append([]priority.Option{priority.WithSlots(1)}, opts...)...)
	hold(t, s, 1)
	r := newRecorder()
	start := time.Now()
	for _, a := range arrivals {
		if d := a.at - time.Since(start); d > 0 {
			testkit.Advance(d)
		}
		r.wait(context.Background(), s, a.name, a.p, 0)
	}
	if d := releaseAt - time.Since(start); d > 0 {
		testkit.Advance(d)
	}
	s.Release()
	synctest.Wait()
	if st := s.Stats(); st.Waiting != 0 || st.InUse != 0 {
		t.Fatalf("after the run: waiting=%d inUse=%d, want 0 and 0", st.Waiting, st.InUse)
	}
	return r.Order()
}

func TestOrdering(t *testing.T) {
	const aging = 100 * time.Millisecond
	tests := []struct {
		name      string
		opts      []priority.Option
		arrivals  []arrival
		releaseAt time.Duration
		want      []string
	}{
		{
			name:     "highest priority first",
			opts:     []priority.Option{priority.WithAging(time.Hour)},
			arrivals: []arrival{{"p3", 3, 0}, {"p7", 7, 0}, {"p1", 1, 0}, {"p9", 9, 0}, {"p5", 5, 0}, {"p0", 0, 0}},
			want:     []string{"p9", "p7", "p5", "p3", "p1", "p0"},
		},
		{
			name:     "FIFO ties within a priority",
			opts:     []priority.Option{priority.WithAging(time.Hour)},
			arrivals: []arrival{{"a", 4, 0}, {"b", 4, 0}, {"c", 4, 0}, {"hi", 6, 0}, {"d", 4, 0}},
			want:     []string{"hi", "a", "b", "c", "d"},
		},
		{
			name:     "FIFO ties with aging: equal effective priority, earlier first",
			opts:     []priority.Option{priority.WithAging(aging)},
			arrivals: []arrival{{"p2@0", 2, 0}, {"p3@100ms", 3, aging}, {"p4@200ms", 4, 2 * aging}},
			want:     []string{"p2@0", "p3@100ms", "p4@200ms"},
		},
		{
			name:     "aging lifts an old low priority over a newer one level up",
			opts:     []priority.Option{priority.WithAging(aging)},
			arrivals: []arrival{{"p2@0", 2, 0}, {"p3@50ms", 3, aging / 2}, {"p3@150ms", 3, aging + aging/2}},
			want:     []string{"p3@50ms", "p2@0", "p3@150ms"},
		},
		{
			name:     "strict priority without aging",
			opts:     []priority.Option{priority.WithAging(0)},
			arrivals: []arrival{{"p0@0", 0, 0}, {"p1@1h", 1, time.Hour}, {"p0@2h", 0, 2 * time.Hour}},
			want:     []string{"p1@1h", "p0@0", "p0@2h"},
		},
		{
			name:     "out-of-range priorities are clamped",
			opts:     []priority.Option{priority.WithAging(time.Hour)},
			arrivals: []arrival{{"neg", -50, 0}, {"zero", 0, 0}, {"huge", 1 << 40, 0}, {"nine", 9, 0}},
			want:     []string{"huge", "nine", "neg", "zero"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				got := runArrivals(t, tt.opts, tt.arrivals, tt.releaseAt)
				if !equal(got, tt.want) {
					t.Errorf("grant order: got %v, want %v", got, tt.want)
				}
			})
		})
	}
}

// TestAgingBound checks the documented bound: a message of priority p that
// has waited (MaxPriority−p)·aging is overtaken by no newer arrival, of any
// priority; an arrival just before that instant still overtakes it.
func TestAgingBound(t *testing.T) {
	const aging = 100 * time.Millisecond
	for _, p := range []int{0, 3, 5, 8, 9} {
		t.Run(fmt.Sprintf("p=%d", p), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				bound := time.Duration(priority.MaxPriority-p) * aging
				arrivals := []arrival{{"old", p, 0}}
				want := []string{"old", "at-bound", "after-bound"}
				if bound > 0 {
					arrivals = append(arrivals, arrival{"before-bound", priority.MaxPriority, bound - time.Millisecond})
					want = append([]string{"before-bound"}, want...)
				}
				arrivals = append(arrivals,
					arrival{"at-bound", priority.MaxPriority, bound},
					arrival{"after-bound", priority.MaxPriority, bound + aging})
				got := runArrivals(t, []priority.Option{priority.WithAging(aging)}, arrivals, bound+2*aging)
				if !equal(got, want) {
					t.Errorf("bound %s: grant order got %v, want %v", bound, got, want)
				}
			})
		})
	}
}

// TestAgingBoundUnderSaturation runs the single slot flat out with
// top-priority arrivals twice as fast as it can serve them: a low-priority
// message is overtaken only by the backlog ahead of it and the arrivals of
// the next (MaxPriority−p)·aging, so it gets a slot once those are served,
// while strict priority starves it.
func TestAgingBoundUnderSaturation(t *testing.T) {
	const (
		aging   = 10 * time.Millisecond
		service = time.Millisecond
		run     = time.Second
	)
	tests := []struct {
		name      string
		aging     time.Duration
		p         int
		wantGrant bool
	}{
		{"aging p=0", aging, 0, true},
		{"aging p=4", aging, 4, true},
		{"strict p=0 starves", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newScheduler(t, priority.WithSlots(1), priority.WithAging(tt.aging), priority.WithMaxWaiting(0))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				r := newRecorder()
				// A backlog of 5 top-priority messages, then the low one,
				// then one top-priority arrival per 0.5ms (2× the slot's
				// capacity).
				hold(t, s, 1)
				for i := range 5 {
					r.wait(ctx, s, fmt.Sprint("backlog", i), priority.MaxPriority, service)
				}
				r.wait(ctx, s, "low", tt.p, service)
				var wg sync.WaitGroup
				wg.Go(func() {
					for ctx.Err() == nil {
						wg.Go(func() {
							if s.Acquire(ctx, priority.MaxPriority) == nil {
								time.Sleep(service)
								s.Release()
							}
						})
						time.Sleep(service / 2)
					}
				})
				s.Release()
				time.Sleep(run)
				cancel()
				wg.Wait()
				synctest.Wait()
				// Ahead of low: the 5 backlog messages and the arrivals (one
				// per service/2) of the next (MaxPriority−p)·aging.
				window := time.Duration(priority.MaxPriority-tt.p) * tt.aging
				bound := (5+1+2*window/service)*service + service
				granted := false
				for _, n := range r.Order() {
					granted = granted || n == "low"
				}
				if granted != tt.wantGrant {
					t.Fatalf("low granted: got %v, want %v (err %v)", granted, tt.wantGrant, r.Err("low"))
				}
				if granted && r.Waited("low") > bound {
					t.Errorf("low waited %s, want at most the bound %s", r.Waited("low"), bound)
				}
			})
		})
	}
}

func TestShedding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, priority.WithSlots(1), priority.WithMaxWaiting(3),
			priority.WithAging(time.Hour), priority.WithRetryAfter(3*time.Second))
		hold(t, s, 1)
		r := newRecorder()
		ctx := context.Background()
		r.wait(ctx, s, "p5", 5, 0)
		r.wait(ctx, s, "p1", 1, 0)
		r.wait(ctx, s, "p7", 7, 0)
		r.wait(ctx, s, "p3", 3, 0)     // full: sheds p1, the lowest
		r.wait(ctx, s, "p0", 0, 0)     // full: the newcomer is the lowest
		r.wait(ctx, s, "p3-new", 3, 0) // ties p3, but newer: lowest
		for _, name := range []string{"p1", "p0", "p3-new"} {
			err := r.Err(name)
			if !isReject(err, priority.ErrQueueFull) {
				t.Fatalf("%s: got %v, want a *RejectError wrapping ErrQueueFull", name, err)
			}
			var ra interface{ RetryAfter() time.Duration }
			if !errors.As(err, &ra) || ra.RetryAfter() != 3*time.Second {
				t.Errorf("%s: RetryAfter: got %v, want 3s", name, err)
			}
		}
		st := s.Stats()
		if st.Waiting != 3 || st.Levels[1].QueueFull != 1 || st.Levels[0].QueueFull != 1 || st.Levels[3].QueueFull != 1 {
			t.Errorf("stats: got waiting=%d queueFull[0,1,3]=%d,%d,%d, want 3 and 1,1,1",
				st.Waiting, st.Levels[0].QueueFull, st.Levels[1].QueueFull, st.Levels[3].QueueFull)
		}
		s.Release()
		synctest.Wait()
		if got, want := r.Order(), []string{"p7", "p5", "p3"}; !equal(got, want) {
			t.Errorf("grant order: got %v, want %v", got, want)
		}
	})
}

func TestMaxWait(t *testing.T) {
	tests := []struct {
		name             string
		maxWait, maxHold time.Duration
		want             time.Duration
	}{
		{"max_wait", time.Second, 0, time.Second},
		{"max_hold", 0, 2 * time.Second, 2 * time.Second},
		{"shorter of both: max_hold", 5 * time.Second, 2 * time.Second, 2 * time.Second},
		{"shorter of both: max_wait", time.Second, 2 * time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newScheduler(t, priority.WithSlots(1), priority.WithMaxWait(tt.maxWait), priority.WithMaxHold(tt.maxHold))
				hold(t, s, 1)
				r := newRecorder()
				r.wait(context.Background(), s, "m", 4, 0)
				testkit.Advance(tt.want - time.Nanosecond)
				if err := r.Err("m"); err != nil {
					t.Fatalf("before the bound: got %v, want still waiting", err)
				}
				testkit.Advance(time.Nanosecond)
				err := r.Err("m")
				if !isReject(err, priority.ErrMaxWait) {
					t.Fatalf("at the bound: got %v, want ErrMaxWait", err)
				}
				var re *priority.RejectError
				errors.As(err, &re)
				if re.Waited != tt.want || re.Priority != 4 {
					t.Errorf("got waited=%s priority=%d, want %s and 4", re.Waited, re.Priority, tt.want)
				}
				if st := s.Stats(); st.Waiting != 0 || st.Levels[4].MaxWait != 1 {
					t.Errorf("stats: got waiting=%d maxWait=%d, want 0 and 1", st.Waiting, st.Levels[4].MaxWait)
				}
				// The slot is still held once, and a Release frees it.
				s.Release()
				if st := s.Stats(); st.InUse != 0 {
					t.Errorf("inUse after release: got %d, want 0", st.InUse)
				}
			})
		})
	}
}

func TestCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, priority.WithSlots(1))
		hold(t, s, 1)
		r := newRecorder()
		ctx, cancel := context.WithCancel(context.Background())
		r.wait(ctx, s, "cancelled", 9, 0)
		r.wait(context.Background(), s, "other", 1, 0)
		cancel()
		synctest.Wait()
		if err := r.Err("cancelled"); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: got %v, want context.Canceled", err)
		}
		if st := s.Stats(); st.Waiting != 1 || st.Levels[9].Canceled != 1 {
			t.Fatalf("stats: got waiting=%d canceled=%d, want 1 and 1", st.Waiting, st.Levels[9].Canceled)
		}
		s.Release()
		synctest.Wait()
		if got := r.Order(); !equal(got, []string{"other"}) {
			t.Errorf("grant order: got %v, want [other]", got)
		}
		// An already-cancelled context does not queue.
		hold(t, s, 1)
		if err := s.Acquire(ctx, 5); !errors.Is(err, context.Canceled) {
			t.Errorf("acquire with a cancelled context: got %v, want context.Canceled", err)
		}
		if st := s.Stats(); st.Waiting != 0 || st.InUse != 1 {
			t.Errorf("stats: got waiting=%d inUse=%d, want 0 and 1", st.Waiting, st.InUse)
		}
		s.Release()
	})
}

// TestCancelRacingGrant cancels waiters at the instant the slot is handed
// over: whichever wins, no slot leaks and none is granted twice.
func TestCancelRacingGrant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 200
		s := newScheduler(t, priority.WithSlots(2))
		var inUse, maxInUse, done atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%7)*time.Millisecond)
			wg.Go(func() {
				defer cancel()
				if s.Acquire(ctx, i%10) != nil {
					return
				}
				cur := inUse.Add(1)
				for {
					m := maxInUse.Load()
					if cur <= m || maxInUse.CompareAndSwap(m, cur) {
						break
					}
				}
				time.Sleep(time.Millisecond)
				inUse.Add(-1)
				done.Add(1)
				s.Release()
			})
		}
		wg.Wait()
		if maxInUse.Load() > 2 {
			t.Errorf("max concurrent holders: got %d, want at most 2", maxInUse.Load())
		}
		if st := s.Stats(); st.InUse != 0 || st.Waiting != 0 {
			t.Errorf("after all: got inUse=%d waiting=%d, want 0 and 0", st.InUse, st.Waiting)
		}
		if done.Load() == 0 {
			t.Error("no message got a slot")
		}
	})
}

func TestCloseWithThousandsWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 5000
		s := newScheduler(t, priority.WithSlots(4))
		hold(t, s, 4)
		errs := make(chan error, n)
		for i := range n {
			go func() { errs <- s.Acquire(context.Background(), i) }()
		}
		synctest.Wait()
		if st := s.Stats(); st.Waiting != n {
			t.Fatalf("waiting: got %d, want %d", st.Waiting, n)
		}
		start := time.Now()
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		synctest.Wait()
		if d := time.Since(start); d != 0 {
			t.Errorf("waiters took %s of fake time to return, want 0", d)
		}
		for range n {
			err := <-errs
			if !isReject(err, priority.ErrClosed) || !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want ErrClosed that also matches context.Canceled", err)
			}
		}
		if err := s.Acquire(context.Background(), 1); !errors.Is(err, priority.ErrClosed) {
			t.Errorf("Acquire after Close: got %v, want ErrClosed", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		for range 4 {
			s.Release()
		}
		if st := s.Stats(); st.InUse != 0 || st.Waiting != 0 {
			t.Errorf("after close: got inUse=%d waiting=%d, want 0 and 0", st.InUse, st.Waiting)
		}
	})
}

func TestNewSchedulerInvalid(t *testing.T) {
	tests := []struct {
		name string
		opt  priority.Option
	}{
		{"zero slots", priority.WithSlots(0)},
		{"negative aging", priority.WithAging(-time.Second)},
		{"enormous aging", priority.WithAging(25 * time.Hour)},
		{"negative max_waiting", priority.WithMaxWaiting(-1)},
		{"negative max_wait", priority.WithMaxWait(-time.Second)},
		{"negative max_hold", priority.WithMaxHold(-time.Second)},
		{"default priority too high", priority.WithDefaultPriority(10)},
		{"default priority negative", priority.WithDefaultPriority(-1)},
		{"negative retry_after", priority.WithRetryAfter(-time.Second)},
		{"empty name", priority.WithName("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := priority.NewScheduler(tt.opt)
			if !errors.Is(err, priority.ErrInvalidConfig) || s != nil {
				t.Errorf("got (%v, %v), want (nil, ErrInvalidConfig)", s, err)
			}
		})
	}
	if _, err := priority.NewScheduler(nil); err != nil {
		t.Errorf("nil option: got %v, want ignored", err)
	}
}

func TestReleaseWithoutAcquireIsIgnored(t *testing.T) {
	s := newScheduler(t, priority.WithSlots(1))
	s.Release()
	if err := s.Acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.InUse != 1 {
		t.Errorf("inUse: got %d, want 1", st.InUse)
	}
	s.Release()
}

// TestSheddingUsesEffectivePriority: with aging, an old message of a low
// base priority can outrank a newer one of a higher base, so the newer one
// is shed.
func TestSheddingUsesEffectivePriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const aging = 100 * time.Millisecond
		s := newScheduler(t, priority.WithSlots(1), priority.WithMaxWaiting(2), priority.WithAging(aging))
		hold(t, s, 1)
		r := newRecorder()
		ctx := context.Background()
		r.wait(ctx, s, "p1@0", 1, 0) // effective 6 at 500ms
		r.wait(ctx, s, "p2@0", 2, 0) // effective 7 at 500ms
		testkit.Advance(5 * aging)
		r.wait(ctx, s, "p5@500ms", 5, 0) // effective 5: the lowest, shed
		if err := r.Err("p5@500ms"); !isReject(err, priority.ErrQueueFull) {
			t.Fatalf("p5@500ms: got %v, want ErrQueueFull", err)
		}
		r.wait(ctx, s, "p7@500ms", 7, 0) // effective 7 > 6: sheds p1@0
		if err := r.Err("p1@0"); !isReject(err, priority.ErrQueueFull) {
			t.Fatalf("p1@0: got %v, want ErrQueueFull", err)
		}
		var re *priority.RejectError
		if errors.As(r.Err("p1@0"), &re); re.Waited != 5*aging {
			t.Errorf("p1@0 waited: got %s, want %s", re.Waited, 5*aging)
		}
		s.Release()
		synctest.Wait()
		// p2@0 and p7@500ms both have effective priority 7: FIFO.
		if got, want := r.Order(), []string{"p2@0", "p7@500ms"}; !equal(got, want) {
			t.Errorf("grant order: got %v, want %v", got, want)
		}
	})
}

func TestString(t *testing.T) {
	s := newScheduler(t, priority.WithName("shared"), priority.WithMaxWait(30*time.Second), priority.WithMaxHold(20*time.Second))
	if got, want := s.String(), "scheduler=shared slots=8 aging=500ms max_waiting=10000 max_wait=20s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRejectError(t *testing.T) {
	err := error(&priority.RejectError{Err: priority.ErrMaxWait, Priority: 3, Waited: 2 * time.Second, Retry: time.Second})
	if got, want := err.Error(), "levee/priority: max wait exceeded (priority 3, waited 2s)"; got != want {
		t.Errorf("Error: got %q, want %q", got, want)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, priority.ErrQueueFull) {
		t.Error("a max-wait rejection must match only ErrMaxWait")
	}
	var classed interface{ ErrorClass() string }
	if !errors.As(err, &classed) || classed.ErrorClass() != "transient" {
		t.Errorf("ErrorClass: got %v, want transient", classed)
	}
	s := newScheduler(t, priority.WithName("x"))
	if s.Name() != "x" {
		t.Errorf("Name: got %q, want x", s.Name())
	}
}

// TestCancelledContextTakesNoFreeSlot: even with a slot free, a message
// whose context has ended does not run.
func TestCancelledContextTakesNoFreeSlot(t *testing.T) {
	s := newScheduler(t, priority.WithSlots(2))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Acquire(ctx, 3); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if st := s.Stats(); st.InUse != 0 || st.Levels[3].Canceled != 1 || st.Levels[3].Granted != 0 {
		t.Errorf("got inUse=%d canceled=%d granted=%d, want 0, 1, 0", st.InUse, st.Levels[3].Canceled, st.Levels[3].Granted)
	}
}

// endsAsGranted is a context that ends at the moment its wait for a slot
// begins, and hands that wait the slot at the same moment (release): when
// the wait looks, both the grant and the end are there, as at a shutdown
// where the message holding the slot gives it back as every held
// message's context ends.
type endsAsGranted struct {
	context.Context
	release func()
	once    sync.Once
	done    chan struct{}
}

func (c *endsAsGranted) Done() <-chan struct{} {
	c.once.Do(func() { c.release(); close(c.done) })
	return c.done
}

func (c *endsAsGranted) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// TestGrantAsContextEndsIsHandedOn: a slot handed to a waiting message as
// its context ends is not taken, whichever the wait sees first: Acquire
// returns the context's error and the slot goes on (here it is free
// again). Before, the wait took the grant half the time (a select between
// two ready cases), and the handler of a message handed back at a
// shutdown ran (TestShutdownHandBacksAreNotFailures saw a second
// levee.priority.wait.duration on RabbitMQ and PostgreSQL).
func TestGrantAsContextEndsIsHandedOn(t *testing.T) {
	for i := range 64 { // each run would take the grant with probability 1/2
		s := newScheduler(t, priority.WithSlots(1))
		if err := s.Acquire(context.Background(), 5); err != nil {
			t.Fatal(err)
		}
		ctx := &endsAsGranted{Context: context.Background(), release: s.Release, done: make(chan struct{})}
		if err := s.Acquire(ctx, 5); !errors.Is(err, context.Canceled) {
			t.Fatalf("run %d: a slot granted as the context ended: got %v, want context.Canceled", i, err)
		}
		if st := s.Stats(); st.InUse != 0 || st.Waiting != 0 {
			t.Fatalf("run %d: got inUse=%d waiting=%d, want 0 and 0", i, st.InUse, st.Waiting)
		}
	}
}
