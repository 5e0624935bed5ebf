package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/testkit"
)

var errDownstreamTimeout = errors.New("downstream timeout")

// fifoDownstream models a downstream of a given capacity: requests are
// served one after another at 1/capacity each, plus a fixed base latency;
// a request whose response would take longer than timeout fails after
// timeout without using capacity (the caller gave up).
type fifoDownstream struct {
	mu        sync.Mutex
	capacity  float64 // guarded by mu
	busyUntil time.Time
	base      time.Duration
	timeout   time.Duration
}

func (d *fifoDownstream) setCapacity(c float64) {
	d.mu.Lock()
	d.capacity = c
	d.mu.Unlock()
}

func (d *fifoDownstream) call() error {
	d.mu.Lock()
	now := time.Now()
	start := d.busyUntil
	if start.Before(now) {
		start = now
	}
	done := start.Add(time.Duration(float64(time.Second) / d.capacity))
	lat := done.Sub(now) + d.base
	if lat > d.timeout {
		d.mu.Unlock()
		time.Sleep(d.timeout)
		return errDownstreamTimeout
	}
	d.busyUntil = done
	d.mu.Unlock()
	time.Sleep(lat)
	return nil
}

type adaptiveRun struct {
	convergence time.Duration // after the drop, until the limit stays in band
	errRate     float64       // failures / calls during the convergence
	phase2Err   float64       // failures / calls over the whole second phase
	limitBefore float64       // mean limit over the last 5s before the drop
	limitAfter  float64       // mean limit over the last 5s
	goodput     float64       // successes/s over the last 5s
}

// runAdaptiveScenario drives a limiter with 1000 workers against a
// downstream whose capacity drops from 1000/s to 300/s at 10s.
func runAdaptiveScenario(t *testing.T, a Adaptive) adaptiveRun {
	ds := &fifoDownstream{capacity: 1000, base: 10 * time.Millisecond, timeout: time.Second}
	l := mustNew(t, WithAdaptive(a))
	h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, ds.call() })
	ctx, cancel := context.WithCancel(context.Background())
	type sample struct {
		at         time.Duration
		limit      float64
		calls, bad int64
	}
	var calls, bad atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 1000; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				msg := message.NewMessage("m", nil)
				msg.SetContext(ctx)
				_, err := h(msg)
				if errors.Is(err, context.Canceled) {
					return
				}
				calls.Add(1)
				if err != nil {
					bad.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	var samples []sample
	for i := 1; i <= 400; i++ { // 20s in 50ms steps
		time.Sleep(50 * time.Millisecond)
		if i == 200 {
			ds.setCapacity(300)
		}
		samples = append(samples, sample{time.Since(start), l.Rate(), calls.Load(), bad.Load()})
	}
	cancel()
	wg.Wait()
	if testing.Verbose() {
		for _, s := range samples[190:] {
			if int(s.at/time.Millisecond)%250 == 0 {
				t.Logf("t=%v limit=%.0f", s.at, s.limit)
			}
		}
	}

	const drop = 10 * time.Second
	var r adaptiveRun
	lo, hi := 0.6*300, 1.2*300
	last := drop
	for _, s := range samples {
		if s.at > drop && (s.limit < lo || s.limit > hi) {
			last = s.at
		}
	}
	r.convergence = last - drop
	var atDrop, atConv, end, before sample
	var sumBefore, sumAfter float64
	for _, s := range samples {
		switch {
		case s.at <= drop:
			atDrop = s
		}
		if s.at <= last {
			atConv = s
		}
		if s.at > 5*time.Second && s.at <= drop {
			sumBefore += s.limit
		}
		if s.at > 15*time.Second {
			sumAfter += s.limit
		}
		if s.at <= 15*time.Second {
			before = s
		}
		end = s
	}
	if c := atConv.calls - atDrop.calls; c > 0 {
		r.errRate = float64(atConv.bad-atDrop.bad) / float64(c)
	}
	r.phase2Err = float64(end.bad-atDrop.bad) / float64(end.calls-atDrop.calls)
	r.limitBefore, r.limitAfter = sumBefore/100, sumAfter/100
	r.goodput = float64((end.calls-end.bad)-(before.calls-before.bad)) / 5
	return r
}

func (r adaptiveRun) String() string {
	return fmt.Sprintf("convergence=%v err=%.2f%% phase2err=%.2f%% limit before=%.0f after=%.0f goodput=%.0f/s",
		r.convergence, 100*r.errRate, 100*r.phase2Err, r.limitBefore, r.limitAfter, r.goodput)
}

func TestAdaptiveConvergence(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Adaptive
	}{
		{"target latency", Adaptive{Min: 50, Max: 1500, TargetLatency: 50 * time.Millisecond}},
		{"automatic latency target", Adaptive{Min: 50, Max: 1500}},
	} {
		t.Run(tc.name, func(t *testing.T) { testAdaptiveConvergence(t, tc.a) })
	}
}

func testAdaptiveConvergence(t *testing.T, a Adaptive) {
	testkit.Synctest(t, func(t *testing.T) {
		r := runAdaptiveScenario(t, a)
		t.Log(r)
		if r.convergence >= 10*time.Second {
			t.Errorf("convergence took %v, want < 10s", r.convergence)
		}
		if r.errRate >= 0.05 || r.phase2Err >= 0.05 {
			t.Errorf("error rate %.2f%% during convergence, %.2f%% after the drop, want < 5%%", 100*r.errRate, 100*r.phase2Err)
		}
		if r.limitBefore < 800 || r.limitBefore > 1200 {
			t.Errorf("limit before the drop %.0f, want about 1000", r.limitBefore)
		}
		if r.goodput < 0.8*300 {
			t.Errorf("goodput after the drop %.0f/s, want >= 240/s (80%% of capacity)", r.goodput)
		}
	})
}

func TestAdaptiveBoundsAndIdle(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithRate(100), WithAdaptive(Adaptive{Min: 50, Max: 200, Interval: 100 * time.Millisecond, MinSamples: 1}))
		fail := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("down") })
		for i := 0; i < 200; i++ {
			_, _ = fail(message.NewMessage("x", nil))
		}
		if got := l.Rate(); got != 50 {
			t.Fatalf("after failures Rate %v, want Min 50", got)
		}
		// Permanent errors are the message's fault: they do not lower it.
		l.SetRate(120)
		perm := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, permanentErr{} })
		for i := 0; i < 100; i++ {
			_, _ = perm(message.NewMessage("x", nil))
		}
		if got := l.Rate(); got < 120 {
			t.Fatalf("after permanent errors Rate %v, want >= 120", got)
		}
		ok := l.Middleware(noop)
		for i := 0; i < 2000; i++ {
			_, _ = ok(message.NewMessage("x", nil))
		}
		if got := l.Rate(); got != 200 {
			t.Fatalf("after successes Rate %v, want Max 200", got)
		}
		// Quiet traffic (well under the limit) does not move it.
		l.SetRate(100)
		for i := 0; i < 30; i++ {
			time.Sleep(100 * time.Millisecond)
			_, _ = ok(message.NewMessage("x", nil))
		}
		if got := l.Rate(); got != 100 {
			t.Fatalf("quiet traffic moved the rate to %v", got)
		}
		l.SetRate(1e6)
		if got := l.Rate(); got != 200 {
			t.Fatalf("SetRate above Max gave %v, want 200", got)
		}
		l.SetRate(math.NaN())
		if got := l.Rate(); got != 50 {
			t.Fatalf("SetRate(NaN) gave %v, want Min 50", got)
		}
	})
}

type permanentErr struct{}

func (permanentErr) Error() string      { return "bad message" }
func (permanentErr) ErrorClass() string { return "permanent" }

// TestAdaptivePanicLeavesNoInflight: a handler that panics behind an
// adaptive limiter leaves the in-flight count (used to hold the rate after
// a cut, by Little's law) as it was, and counts as a failed call.
func TestAdaptivePanicLeavesNoInflight(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithAdaptive(Adaptive{Min: 1, Max: 1000}))
		h := l.Middleware(func(*message.Message) ([]*message.Message, error) { panic("boom") })
		for range 5 {
			func() {
				defer func() { _ = recover() }()
				_, _ = h(message.NewMessage("m", nil))
			}()
		}
		if n := l.adapt.inflight.Load(); n != 0 {
			t.Errorf("in flight after 5 panicking calls: got %d, want 0", n)
		}
	})
}
