package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"golang.org/x/time/rate"

	"github.com/levee-dev/levee/ratelimit"
)

// ratelimitLong reports whether the long (10 s per point) runs are asked
// for with LEVEE_BENCH_LONG=1.
func ratelimitLong() bool { return os.Getenv("LEVEE_BENCH_LONG") == "1" }

// ratelimitImpl is one limiter under test: wait blocks until admitted (or
// fails when ctx ends); burst is its initial burst, subtracted from counts.
type ratelimitImpl struct {
	name  string
	burst int
	make  func(perSecond float64) (wait func(context.Context) error, stop func())
}

func ratelimitImpls() []ratelimitImpl {
	levee := func(burst int, opts ...ratelimit.Option) func(float64) (func(context.Context) error, func()) {
		return func(r float64) (func(context.Context) error, func()) {
			l, err := ratelimit.New(append([]ratelimit.Option{ratelimit.WithRate(r), ratelimit.WithBurst(burst)}, opts...)...)
			if err != nil {
				panic(err)
			}
			return l.Wait, func() { _ = l.Close() }
		}
	}
	xrate := func(burst int) func(float64) (func(context.Context) error, func()) {
		return func(r float64) (func(context.Context) error, func()) {
			l := rate.NewLimiter(rate.Limit(r), burst)
			return l.Wait, func() {}
		}
	}
	return []ratelimitImpl{
		{"levee_b1", 1, levee(1)},
		{"levee_b10", 10, levee(10)},
		{"levee_strict_b1", 1, levee(1, ratelimit.WithCatchUp(0))},
		{"watermill_throttle", 0, func(r float64) (func(context.Context) error, func()) {
			th := wmw.NewThrottle(int64(r), time.Second)
			h := th.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
			msg := message.NewMessage("x", nil)
			// Throttle ignores the context; its ticker cannot be stopped.
			return func(context.Context) error { _, err := h(msg); return err }, func() {}
		}},
		{"xrate_wait_b1", 1, xrate(1)},
		{"xrate_wait_b10", 10, xrate(10)},
	}
}

// ratelimitMeasure runs conc workers against wait for d and returns the
// achieved rate: admissions after the initial burst, divided by the time
// from the start to the last admission (so a window that ends between two
// slots does not bias the figure).
func ratelimitMeasure(impl ratelimitImpl, target float64, conc int, d time.Duration) float64 {
	wait, stop := impl.make(target)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	end := start.Add(d)
	var n, last atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if wait(ctx) != nil {
					return
				}
				now := time.Now()
				if now.After(end) {
					return
				}
				n.Add(1)
				at := int64(now.Sub(start))
				for {
					prev := last.Load()
					if at <= prev || last.CompareAndSwap(prev, at) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()-int64(impl.burst)) / time.Duration(last.Load()).Seconds()
}

// BenchmarkRatelimitAccuracy measures the achieved rate against the
// target, for each limiter, rate and number of concurrent handlers. Each
// point runs 2 s (10 s with LEVEE_BENCH_LONG=1) once, whatever b.N: run it
// with -benchtime=1x. Metrics: msg/s and %target.
func BenchmarkRatelimitAccuracy(b *testing.B) {
	if testing.Short() {
		b.Skip("accuracy runs 2 s per point (10 s with LEVEE_BENCH_LONG=1); skipped with -short")
	}
	d := 2 * time.Second
	if ratelimitLong() {
		d = 10 * time.Second
	}
	for _, conc := range []int{1, 8} {
		for _, target := range []float64{100, 1000, 10000, 50000} {
			for _, impl := range ratelimitImpls() {
				b.Run(fmt.Sprintf("conc=%d/rate=%g/%s", conc, target, impl.name), func(b *testing.B) {
					got := ratelimitMeasure(impl, target, conc, d)
					b.ReportMetric(got, "msg/s")
					b.ReportMetric(100*got/target, "%target")
				})
			}
		}
	}
}

func ratelimitNoop(*message.Message) ([]*message.Message, error) { return nil, nil }

// BenchmarkRatelimitOverhead is the per-message cost of the middleware
// when it does not have to wait: unlimited, and limited at a rate far
// above the load. The bare handler is the baseline.
func BenchmarkRatelimitOverhead(b *testing.B) {
	msg := message.NewMessage("x", nil)
	run := func(b *testing.B, h message.HandlerFunc) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = h(msg)
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, ratelimitNoop) })
	b.Run("levee_unlimited", func(b *testing.B) {
		l, _ := ratelimit.New()
		defer l.Close()
		run(b, l.Middleware(ratelimitNoop))
	})
	b.Run("levee_1e12", func(b *testing.B) {
		l, _ := ratelimit.New(ratelimit.WithRate(1e12))
		defer l.Close()
		run(b, l.Middleware(ratelimitNoop))
	})
	keyed := func(b *testing.B, opts ...ratelimit.Option) {
		l, _ := ratelimit.New(append([]ratelimit.Option{ratelimit.WithKeyMetadata("customer_id"), ratelimit.WithPerKey(1e12, 1)}, opts...)...)
		defer l.Close()
		m := message.NewMessage("x", nil)
		m.Metadata.Set("customer_id", "c42")
		h := l.Middleware(ratelimitNoop)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = h(m)
		}
	}
	b.Run("levee_per_key_1e12", func(b *testing.B) { keyed(b) })
	// per-key limits, a rate of the limiter's own and a max_wait: one
	// bound for the two waits (a token free at once reads no clock)
	b.Run("levee_per_key_max_wait_1e12", func(b *testing.B) {
		keyed(b, ratelimit.WithRate(1e12), ratelimit.WithMaxWait(time.Second))
	})
	// reject mode: a token free at once (the success path), and a
	// rejection (each told a token to come, see ratelimit.Reserve)
	b.Run("levee_reject_1e12", func(b *testing.B) {
		l, _ := ratelimit.New(ratelimit.WithRate(1e12), ratelimit.WithMode(ratelimit.ModeReject))
		defer l.Close()
		run(b, l.Middleware(ratelimitNoop))
	})
	b.Run("levee_per_key_reject_1e12", func(b *testing.B) {
		keyed(b, ratelimit.WithRate(1e12), ratelimit.WithMode(ratelimit.ModeReject))
	})
	b.Run("levee_reject_refused", func(b *testing.B) {
		l, _ := ratelimit.New(ratelimit.WithRate(1e-3), ratelimit.WithMode(ratelimit.ModeReject))
		defer l.Close()
		run(b, l.Middleware(ratelimitNoop))
	})
	b.Run("levee_adaptive_1e12", func(b *testing.B) {
		l, _ := ratelimit.New(ratelimit.WithAdaptive(ratelimit.Adaptive{Min: 1, Max: 1e12}))
		defer l.Close()
		run(b, l.Middleware(ratelimitNoop))
	})
	b.Run("xrate_inf", func(b *testing.B) {
		l := rate.NewLimiter(rate.Inf, 1)
		run(b, ratelimitXrateMiddleware(l, ratelimitNoop))
	})
	b.Run("xrate_1e12", func(b *testing.B) {
		l := rate.NewLimiter(1e12, 1)
		run(b, ratelimitXrateMiddleware(l, ratelimitNoop))
	})
}

func ratelimitXrateMiddleware(l *rate.Limiter, next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if err := l.Wait(msg.Context()); err != nil {
			return nil, err
		}
		return next(msg)
	}
}

// BenchmarkRatelimitContended is the same path under RunParallel: every
// goroutine takes tokens from one limiter.
func BenchmarkRatelimitContended(b *testing.B) {
	run := func(b *testing.B, h message.HandlerFunc) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			msg := message.NewMessage("x", nil)
			for pb.Next() {
				_, _ = h(msg)
			}
		})
	}
	b.Run("levee_unlimited", func(b *testing.B) {
		l, _ := ratelimit.New()
		defer l.Close()
		run(b, l.Middleware(ratelimitNoop))
	})
	b.Run("levee_1e12", func(b *testing.B) {
		l, _ := ratelimit.New(ratelimit.WithRate(1e12))
		defer l.Close()
		run(b, l.Middleware(ratelimitNoop))
	})
	b.Run("xrate_1e12", func(b *testing.B) {
		run(b, ratelimitXrateMiddleware(rate.NewLimiter(1e12, 1), ratelimitNoop))
	})
	// Saturated: the limiter is the bottleneck, every call waits.
	b.Run("levee_saturated_1e6", func(b *testing.B) {
		l, _ := ratelimit.New(ratelimit.WithRate(1e6))
		defer l.Close()
		run(b, l.Middleware(ratelimitNoop))
	})
	b.Run("xrate_saturated_1e6", func(b *testing.B) {
		run(b, ratelimitXrateMiddleware(rate.NewLimiter(1e6, 1), ratelimitNoop))
	})
}

var errRatelimitTimeout = errors.New("downstream timeout")

// ratelimitDownstream serves requests one after another at capacity per
// second plus a base latency; a request that would take longer than
// timeout fails after timeout without using capacity.
type ratelimitDownstream struct {
	mu        sync.Mutex
	capacity  float64
	busyUntil time.Time
	base      time.Duration
	timeout   time.Duration
}

func (d *ratelimitDownstream) setCapacity(c float64) {
	d.mu.Lock()
	d.capacity = c
	d.mu.Unlock()
}

func (d *ratelimitDownstream) call() error {
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
		return errRatelimitTimeout
	}
	d.busyUntil = done
	d.mu.Unlock()
	time.Sleep(lat)
	return nil
}

// BenchmarkRatelimitAdaptive runs the adaptive scenario in real time: 1000
// workers, a downstream of capacity 1000/s (base latency 10 ms, timeout
// 1 s) that drops to 300/s halfway. Phases of 5 s (10 s with
// LEVEE_BENCH_LONG=1). Reports the convergence time (from the drop until
// the limit stays within 60..120% of the new capacity), the error rate
// during it and after the drop, and the goodput over the final 40% of the
// second phase (as % of capacity).
func BenchmarkRatelimitAdaptive(b *testing.B) {
	if testing.Short() {
		b.Skip("the adaptive scenario runs 10 s per controller (20 s long); skipped with -short")
	}
	phase := 5 * time.Second
	if ratelimitLong() {
		phase = 10 * time.Second
	}
	for _, tc := range []struct {
		name string
		a    ratelimit.Adaptive
	}{
		{"target_50ms", ratelimit.Adaptive{Min: 50, Max: 1500, TargetLatency: 50 * time.Millisecond}},
		{"auto_latency", ratelimit.Adaptive{Min: 50, Max: 1500}},
		{"errors_only", ratelimit.Adaptive{Min: 50, Max: 1500, IgnoreLatency: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := ratelimitAdaptiveRun(tc.a, phase)
			b.ReportMetric(r.convergence.Seconds(), "converge_s")
			b.ReportMetric(100*r.errDuring, "%err_converging")
			b.ReportMetric(100*r.errAfter, "%err_after_drop")
			b.ReportMetric(r.limitBefore, "limit_before")
			b.ReportMetric(r.limitAfter, "limit_after")
			b.ReportMetric(100*r.goodput/300, "%goodput_after")
		})
	}
}

type ratelimitAdaptiveResult struct {
	convergence                      time.Duration
	errDuring, errAfter              float64
	limitBefore, limitAfter, goodput float64
}

func ratelimitAdaptiveRun(a ratelimit.Adaptive, phase time.Duration) ratelimitAdaptiveResult {
	ds := &ratelimitDownstream{capacity: 1000, base: 10 * time.Millisecond, timeout: time.Second}
	l, err := ratelimit.New(ratelimit.WithAdaptive(a))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, ds.call() })
	ctx, cancel := context.WithCancel(context.Background())
	var calls, bad atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 1000; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := message.NewMessage("m", nil)
			msg.SetContext(ctx)
			for ctx.Err() == nil {
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
	type sample struct {
		at         time.Duration
		limit      float64
		calls, bad int64
	}
	var samples []sample
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	dropped := false
	for range tick.C {
		at := time.Since(start)
		if !dropped && at >= phase {
			ds.setCapacity(300)
			dropped = true
		}
		samples = append(samples, sample{at, l.Rate(), calls.Load(), bad.Load()})
		if at >= 2*phase {
			break
		}
	}
	tick.Stop()
	cancel()
	wg.Wait()

	var r ratelimitAdaptiveResult
	last := phase
	for _, s := range samples {
		if s.at > phase && (s.limit < 0.6*300 || s.limit > 1.2*300) {
			last = s.at
		}
	}
	r.convergence = last - phase
	idx := func(t time.Duration) int {
		return sort.Search(len(samples), func(i int) bool { return samples[i].at >= t })
	}
	at := func(t time.Duration) sample { return samples[min(idx(t), len(samples)-1)] }
	drop, conv, end := at(phase), at(last), samples[len(samples)-1]
	ratio := func(a, b sample) float64 {
		if c := b.calls - a.calls; c > 0 {
			return float64(b.bad-a.bad) / float64(c)
		}
		return 0
	}
	r.errDuring, r.errAfter = ratio(drop, conv), ratio(drop, end)
	mean := func(from, to time.Duration) float64 {
		sum, n := 0.0, 0
		for _, s := range samples {
			if s.at > from && s.at <= to {
				sum += s.limit
				n++
			}
		}
		return sum / math.Max(1, float64(n))
	}
	r.limitBefore = mean(phase/2, phase)
	r.limitAfter = mean(phase+phase*6/10, 2*phase)
	tail := at(phase + phase*6/10)
	r.goodput = float64((end.calls-end.bad)-(tail.calls-tail.bad)) / (end.at - tail.at).Seconds()
	return r
}
