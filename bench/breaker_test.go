//go:build unix

package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	gobreakerv1 "github.com/sony/gobreaker"

	"github.com/levee-dev/levee/breaker"
)

var errBreakerDown = errors.New("downstream unavailable")

func breakerNoop(*message.Message) ([]*message.Message, error) { return nil, nil }

func breakerWatermill(consecutive uint32, openFor time.Duration) wmw.CircuitBreaker {
	return wmw.NewCircuitBreaker(gobreakerv1.Settings{
		Timeout:     openFor,
		ReadyToTrip: func(c gobreakerv1.Counts) bool { return c.ConsecutiveFailures >= consecutive },
	})
}

func breakerLevee(tb testing.TB, opts ...breaker.Option) *breaker.Breaker {
	tb.Helper()
	br, err := breaker.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = br.Close() })
	return br
}

// BenchmarkBreakerSuccessPath is the cost of the breaker on a healthy
// (closed) handler: Watermill's CircuitBreaker against Levee's, with and
// without a drain configured (not draining).
func BenchmarkBreakerSuccessPath(b *testing.B) {
	cases := []struct {
		name  string
		mw    func(message.HandlerFunc) message.HandlerFunc
		fresh bool // a new message context per call, as a delivery has
	}{
		{"bare", func(h message.HandlerFunc) message.HandlerFunc { return h }, false},
		{"watermill_circuitbreaker", breakerWatermill(5, time.Second).Middleware, false},
		{"levee_breaker", breakerLevee(b).Middleware, false},
		{"levee_breaker_drain", breakerLevee(b, breaker.WithDrain(30*time.Second, 0.1, 1)).Middleware, false},
		{"levee_breaker_ratio", breakerLevee(b, breaker.WithFailureRatio(0.5, 20)).Middleware, false},
		{"levee_breaker_drain_ratio", breakerLevee(b, breaker.WithFailureRatio(0.5, 20),
			breaker.WithDrain(30*time.Second, 0.1, 1)).Middleware, false},
		// slow-call detection times the call less the waits further in
		// (the delivery's wait account: one allocation per delivery)
		{"levee_breaker_slowcall", breakerLevee(b, breaker.WithSlowCall(time.Second, 0)).Middleware, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := c.mw(breakerNoop)
			msg := message.NewMessage("1", []byte("payload"))
			b.ReportAllocs()
			for b.Loop() {
				if c.fresh {
					msg.SetContext(context.Background())
				}
				if _, err := h(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			h := c.mw(breakerNoop)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				msg := message.NewMessage("1", []byte("payload"))
				for pb.Next() {
					if c.fresh {
						msg.SetContext(context.Background())
					}
					if _, err := h(msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func breakerCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type breakerOutageResult struct {
	deliveries, calls int64 // during the outage
	cpu               time.Duration
	recovered         time.Duration // from the end of the outage to the last message processed
	lost              int
}

// breakerOutageRun publishes n messages on GoChannel to a handler whose
// downstream is down for outage, wrapped in mw, and counts what happened
// during the outage, then waits until every message is processed.
func breakerOutageRun(tb testing.TB, mw message.HandlerMiddleware, n int, outage time.Duration) breakerOutageResult {
	logger := watermill.NopLogger{}
	ps := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: int64(n)}, logger)
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		tb.Fatal(err)
	}
	var deliveries, calls, processed atomic.Int64
	var seen sync.Map
	allDone := make(chan struct{})
	var outageEnd time.Time
	var startMu sync.RWMutex
	startMu.Lock()
	count := func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			deliveries.Add(1)
			return next(msg)
		}
	}
	handler := func(msg *message.Message) error {
		calls.Add(1)
		startMu.RLock()
		end := outageEnd
		startMu.RUnlock()
		if time.Now().Before(end) {
			return errBreakerDown
		}
		if _, dup := seen.LoadOrStore(msg.UUID, true); !dup && processed.Add(1) == int64(n) {
			close(allDone)
		}
		return nil
	}
	r.AddConsumerHandler("payments", "orders", ps, handler).AddMiddleware(count, mw)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = r.Run(ctx) }()
	<-r.Running()

	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))
	}
	cpu0 := breakerCPU()
	outageEnd = time.Now().Add(outage)
	startMu.Unlock()
	if err := ps.Publish("orders", msgs...); err != nil {
		tb.Fatal(err)
	}
	time.Sleep(time.Until(outageEnd))
	res := breakerOutageResult{deliveries: deliveries.Load(), calls: calls.Load(), cpu: breakerCPU() - cpu0}
	select {
	case <-allDone:
	case <-time.After(60 * time.Second):
	}
	res.recovered = time.Since(outageEnd)
	res.lost = n - int(processed.Load())
	cancel()
	<-runDone
	_ = r.Close()
	_ = ps.Close()
	return res
}

// BenchmarkBreakerOutage is the anchor scenario: 1,000 messages over
// GoChannel and a 2s downstream outage, Watermill's CircuitBreaker against
// Levee's (same trip policy: 5 consecutive failures, open 500ms). It reports
// handler calls and router deliveries (redeliveries included) during the
// outage, the CPU time the process spent during the outage, the time from
// the end of the outage to the last message processed, and lost messages.
// One iteration takes about 2-4 s per implementation.
func BenchmarkBreakerOutage(b *testing.B) {
	const n, outage, openFor = 1000, 2 * time.Second, 500 * time.Millisecond
	cases := []struct {
		name string
		mw   func(testing.TB) message.HandlerMiddleware
	}{
		{"watermill_circuitbreaker", func(testing.TB) message.HandlerMiddleware {
			return breakerWatermill(5, openFor).Middleware
		}},
		{"levee_breaker", func(tb testing.TB) message.HandlerMiddleware {
			return breakerLevee(tb, breaker.WithConsecutiveFailures(5), breaker.WithOpenFor(openFor),
				breaker.WithDrain(time.Second, 0.1, 1), breaker.WithDrainRate(2000)).Middleware
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var sum breakerOutageResult
			for range b.N {
				r := breakerOutageRun(b, c.mw(b), n, outage)
				sum.deliveries += r.deliveries
				sum.calls += r.calls
				sum.cpu += r.cpu
				sum.recovered += r.recovered
				sum.lost += r.lost
			}
			N := float64(b.N)
			b.ReportMetric(float64(sum.deliveries)/N, "deliveries_in_outage/op")
			b.ReportMetric(float64(sum.calls)/N, "handler_calls_in_outage/op")
			b.ReportMetric(sum.cpu.Seconds()/N, "cpu_s_in_outage/op")
			b.ReportMetric(sum.recovered.Seconds()/N, "s_to_drain_backlog/op")
			b.ReportMetric(float64(sum.lost)/N, "lost/op")
		})
	}
}

// BenchmarkBreakerRamp measures admitted calls per 100ms after recovery
// against the drain's schedule (rate 1000/s, window 2s, start 10%, linear),
// with 32 workers hammering a handler that takes 1ms. Watermill's breaker
// admits everything at once. Reported: the worst and mean relative error per
// 100ms interval, and what the first 100ms admitted against the schedule.
func BenchmarkBreakerRamp(b *testing.B) {
	const (
		rate    = 1000.0
		window  = 2 * time.Second
		start   = 0.1
		openFor = 100 * time.Millisecond
		step    = 100 * time.Millisecond
		workers = 32
	)
	steps := int(window / step)
	schedule := make([]float64, steps)
	for i := range schedule {
		const sub = 100
		for j := range sub {
			t := time.Duration(i)*step + (time.Duration(j)*step+step/2)/sub
			schedule[i] += rate * breaker.RampFraction(t, window, start, 1) * step.Seconds() / sub
		}
	}
	cases := []struct {
		name string
		mw   func(testing.TB) message.HandlerMiddleware
	}{
		{"watermill_circuitbreaker", func(testing.TB) message.HandlerMiddleware {
			return breakerWatermill(1, openFor).Middleware
		}},
		{"levee_breaker", func(tb testing.TB) message.HandlerMiddleware {
			return breakerLevee(tb, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(openFor),
				breaker.WithDrain(window, start, 1), breaker.WithDrainRate(rate)).Middleware
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var maxErr, meanErr, first float64
			for range b.N {
				var down atomic.Bool
				var t0 time.Time
				var t0mu sync.RWMutex
				counts := make([]atomic.Int64, steps+1)
				h := c.mw(b)(func(*message.Message) ([]*message.Message, error) {
					if down.Load() {
						return nil, errBreakerDown
					}
					t0mu.RLock()
					since := time.Since(t0)
					t0mu.RUnlock()
					if i := int(since / step); since >= 0 && i < len(counts) {
						counts[i].Add(1)
					}
					time.Sleep(time.Millisecond)
					return nil, nil
				})
				msg := message.NewMessage("1", nil)
				down.Store(true)
				_, _ = h(msg) // trip
				down.Store(false)
				time.Sleep(openFor + time.Millisecond)
				// The drain starts when the probe returns; t0 is taken just
				// before it (the probe itself lands before t0 and is not
				// counted), so the drain's end cannot fall inside the window.
				t0mu.Lock()
				t0 = time.Now()
				t0mu.Unlock()
				if _, err := h(msg); err != nil { // the probe closes the breaker
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), window)
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for ctx.Err() == nil {
							m := message.NewMessage("1", nil)
							m.SetContext(ctx)
							_, _ = h(m)
						}
					})
				}
				wg.Wait()
				cancel()
				if testing.Verbose() {
					for i := range steps {
						b.Logf("%s [%v, %v): admitted %d, schedule %.1f", c.name, time.Duration(i)*step, time.Duration(i+1)*step, counts[i].Load(), schedule[i])
					}
				}
				worst, mean := 0.0, 0.0
				for i := range steps {
					e := math.Abs(float64(counts[i].Load())-schedule[i]) / schedule[i]
					worst = math.Max(worst, e)
					mean += e / float64(steps)
				}
				maxErr += worst
				meanErr += mean
				first += float64(counts[0].Load())
			}
			N := float64(b.N)
			b.ReportMetric(100*maxErr/N, "max_err_%/100ms")
			b.ReportMetric(100*meanErr/N, "mean_err_%/100ms")
			b.ReportMetric(first/N, "admitted_first_100ms")
			b.ReportMetric(schedule[0], "schedule_first_100ms")
		})
	}
}
