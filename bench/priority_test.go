package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/levee-dev/levee/priority"
)

// ---- Scenario: 2× overload with 10% high priority ----
//
// Four slots serve 10ms each (400 messages/s); 800 messages/s arrive for
// the run: 10% high (priority 9), 45% normal (5), 45% bulk (0). Three
// policies in the same run:
//
//   - fifo: a plain channel semaphore, what a Watermill user has today
//     (blocked senders are served in arrival order; no bound on waiting);
//   - strict: the Levee scheduler without aging (WithAging(0));
//   - levee: the Levee scheduler with aging.
//
// Both schedulers use max_waiting 200, so shed messages are Nacked for
// redelivery instead of waiting without bound. Waits are measured from
// arrival to slot; "served" counts messages that got a slot, the rest were
// shed or still waiting at the end.

const (
	priorityScSlots      = 4
	priorityScService    = 10 * time.Millisecond
	priorityScTick       = 10 * time.Millisecond
	priorityScPerTick    = 8 // 800/s = 2× the 400/s capacity
	priorityScMaxWaiting = 200
	priorityScAging      = 200 * time.Millisecond
)

var priorityScClasses = [...]struct {
	name string
	p    int
}{{"high", 9}, {"normal", 5}, {"bulk", 0}}

// priorityScClass maps arrival i to a class: 2 in 20 high, 9 normal, 9 bulk.
func priorityScClass(i int) int {
	switch r := i % 20; {
	case r < 2:
		return 0
	case r%2 == 0:
		return 1
	}
	return 2
}

type priorityScClassResult struct {
	arrived, served int
	waits           []time.Duration // served only
	maxUnserved     time.Duration
}

func (c *priorityScClassResult) quantile(q float64) time.Duration {
	if len(c.waits) == 0 {
		return 0
	}
	s := slices.Clone(c.waits)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (c *priorityScClassResult) max() time.Duration {
	if len(c.waits) == 0 {
		return 0
	}
	return slices.Max(c.waits)
}

type priorityScResult [len(priorityScClasses)]priorityScClassResult

type priorityScAcquirer interface {
	acquire(ctx context.Context, p int) error
	release()
}

type priorityScFIFO chan struct{}

func (f priorityScFIFO) acquire(ctx context.Context, _ int) error {
	select {
	case f <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (f priorityScFIFO) release() { <-f }

type priorityScSched struct{ *priority.Scheduler }

func (s priorityScSched) acquire(ctx context.Context, p int) error { return s.Acquire(ctx, p) }
func (s priorityScSched) release()                                 { s.Release() }

func priorityScPolicy(name string) (priorityScAcquirer, func()) {
	if name == "fifo" {
		return make(priorityScFIFO, priorityScSlots), func() {}
	}
	aging := priorityScAging
	if name == "strict" {
		aging = 0
	}
	s, err := priority.NewScheduler(priority.WithSlots(priorityScSlots), priority.WithAging(aging),
		priority.WithMaxWaiting(priorityScMaxWaiting))
	if err != nil {
		panic(err)
	}
	return priorityScSched{s}, func() { _ = s.Close() }
}

// priorityScRun runs the scenario for d with policy; it works in real time
// and inside a synctest bubble (fake time).
func priorityScRun(policy string, d time.Duration) priorityScResult {
	acq, closeFn := priorityScPolicy(policy)
	defer closeFn()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var res priorityScResult
	var wg sync.WaitGroup
	ticker := time.NewTicker(priorityScTick)
	defer ticker.Stop()
	end := time.After(d)
	i := 0
loop:
	for {
		select {
		case <-end:
			break loop
		case <-ticker.C:
		}
		for range priorityScPerTick {
			c := priorityScClass(i)
			i++
			mu.Lock()
			res[c].arrived++
			mu.Unlock()
			wg.Go(func() {
				start := time.Now()
				err := acq.acquire(ctx, priorityScClasses[c].p)
				w := time.Since(start)
				mu.Lock()
				if err == nil {
					res[c].served++
					res[c].waits = append(res[c].waits, w)
				} else {
					res[c].maxUnserved = max(res[c].maxUnserved, w)
				}
				mu.Unlock()
				if err == nil {
					time.Sleep(priorityScService)
					acq.release()
				}
			})
		}
	}
	cancel()
	wg.Wait()
	return res
}

// priorityScBound is the documented bound (priority/doc.go) on the bulk
// wait: max_waiting ahead at arrival plus the higher-ranked arrivals of
// the next (9−0)·aging, served at 400/s.
func priorityScBound() time.Duration {
	window := time.Duration(priority.MaxPriority-0) * priorityScAging
	higherPerSec := float64(priorityScPerTick) * float64(time.Second/priorityScTick) * 0.55 // high + normal
	ahead := float64(priorityScMaxWaiting) + higherPerSec*window.Seconds()
	capacity := float64(priorityScSlots) * float64(time.Second/priorityScService)
	return time.Duration(ahead / capacity * float64(time.Second))
}

func priorityScTable(d time.Duration, results map[string]priorityScResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "2x overload for %s, 4 slots x 10ms, 10%% high / 45%% normal / 45%% bulk; bound on bulk wait %s\n", d, priorityScBound())
	fmt.Fprintf(&b, "%-7s %12s %12s %12s %12s %12s %10s\n", "policy", "high p50", "high p99", "normal p99", "bulk p99", "bulk max", "bulk served")
	for _, pol := range []string{"fifo", "strict", "levee"} {
		r := results[pol]
		fmt.Fprintf(&b, "%-7s %12s %12s %12s %12s %12s %5d/%d\n", pol,
			r[0].quantile(0.5).Round(time.Microsecond), r[0].quantile(0.99).Round(time.Microsecond),
			r[1].quantile(0.99).Round(time.Microsecond), r[2].quantile(0.99).Round(time.Microsecond),
			max(r[2].max(), r[2].maxUnserved).Round(time.Microsecond), r[2].served, r[2].arrived)
	}
	return b.String()
}

// TestPriorityScenario runs the scenario for 10s of fake time (synctest),
// deterministic and fast, and checks the targets: high-priority p99
// at most 1/10 of FIFO's, bulk max wait within the documented bound with
// aging, and strict priority starving bulk.
func TestPriorityScenario(t *testing.T) {
	const d = 10 * time.Second
	results := map[string]priorityScResult{}
	for _, pol := range []string{"fifo", "strict", "levee"} {
		synctest.Test(t, func(t *testing.T) { results[pol] = priorityScRun(pol, d) })
	}
	t.Logf("\n%s", priorityScTable(d, results))
	fifo, strict, levee := results["fifo"], results["strict"], results["levee"]
	if got, fifoP99 := levee[0].quantile(0.99), fifo[0].quantile(0.99); got*10 > fifoP99 {
		t.Errorf("levee high p99 %s, want at most 1/10 of FIFO's %s", got, fifoP99)
	}
	if got, bound := levee[2].max(), priorityScBound(); got > bound || levee[2].served == 0 {
		t.Errorf("levee bulk max wait %s (served %d), want served and at most %s", got, levee[2].served, bound)
	}
	if strict[2].served*100 > strict[2].arrived { // under 1%: starved
		t.Errorf("strict bulk served %d of %d, want starvation", strict[2].served, strict[2].arrived)
	}
}

// BenchmarkPriorityScenario runs the same scenario in real time: 2s per
// policy by default, the full 10s with LEVEE_BENCH_LONG=1. Figures are
// reported as metrics (ms).
func BenchmarkPriorityScenario(b *testing.B) {
	d := 2 * time.Second
	if os.Getenv("LEVEE_BENCH_LONG") == "1" {
		d = 10 * time.Second
	}
	for _, pol := range []string{"fifo", "strict", "levee"} {
		b.Run(pol, func(b *testing.B) {
			var r priorityScResult
			for b.Loop() {
				r = priorityScRun(pol, d)
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(r[0].quantile(0.99)), "high-p99-ms")
			b.ReportMetric(ms(max(r[2].max(), r[2].maxUnserved)), "bulk-max-ms")
			b.ReportMetric(100*float64(r[2].served)/float64(max(r[2].arrived, 1)), "bulk-served-%")
		})
	}
}

// ---- Micro-benchmarks ----

// BenchmarkPriorityAcquireRelease: one uncontended slot round trip, against
// the channel semaphore a user would write.
func BenchmarkPriorityAcquireRelease(b *testing.B) {
	ctx := context.Background()
	b.Run("levee", func(b *testing.B) {
		s, _ := priority.NewScheduler(priority.WithSlots(1))
		defer s.Close()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Acquire(ctx, 5); err != nil {
				b.Fatal(err)
			}
			s.Release()
		}
	})
	b.Run("chan-semaphore", func(b *testing.B) {
		sem := make(chan struct{}, 1)
		b.ReportAllocs()
		for b.Loop() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			<-sem
		}
	})
	b.Run("levee-parallel", func(b *testing.B) {
		s, _ := priority.NewScheduler(priority.WithSlots(1 << 20))
		defer s.Close()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = s.Acquire(ctx, 5)
				s.Release()
			}
		})
	})
}

// priorityWithArrival returns a one-slot scheduler's middleware around
// handler after it shed a message, whose first arrival it remembers.
func priorityWithArrival(b *testing.B, handler message.HandlerFunc) (*priority.Scheduler, message.HandlerFunc) {
	b.Helper()
	s, err := priority.NewScheduler(priority.WithSlots(1), priority.WithMaxWaiting(1))
	if err != nil {
		b.Fatal(err)
	}
	h := s.Middleware(handler)
	ctx := context.Background()
	if err := s.Acquire(ctx, 9); err != nil { // the slot is busy
		b.Fatal(err)
	}
	queued := message.NewMessage("queued", nil)
	priority.Set(queued, 9)
	done := make(chan error, 1)
	go func() { _, err := h(queued); done <- err }() // the queue is full
	for s.Stats().Waiting == 0 {
		time.Sleep(time.Millisecond)
	}
	shed := message.NewMessage("shed", nil)
	if _, err := h(shed); !errors.Is(err, priority.ErrQueueFull) {
		b.Fatalf("setup: got %v, want ErrQueueFull", err)
	}
	s.Release()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return s, h
}

// BenchmarkPriorityMiddleware: the per-message middleware path (metadata
// parse, slot round trip, telemetry off) against the bare handler.
func BenchmarkPriorityMiddleware(b *testing.B) {
	handler := func(*message.Message) ([]*message.Message, error) { return nil, nil }
	msg := message.NewMessage("id", nil)
	priority.Set(msg, 7)
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = handler(msg)
		}
	})
	b.Run("levee", func(b *testing.B) {
		s, _ := priority.NewScheduler(priority.WithSlots(1))
		defer s.Close()
		h := s.Middleware(handler)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = h(msg)
		}
	})
	b.Run("levee-arrival-remembered", func(b *testing.B) {
		// Another message was shed and is remembered (its redelivery not
		// back yet, or a stale arrival until it expires): each message
		// then looks itself up.
		s, h := priorityWithArrival(b, handler)
		defer s.Close()
		b.ReportAllocs()
		for b.Loop() {
			_, _ = h(msg)
		}
	})
	b.Run("levee-metrics", func(b *testing.B) {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		defer mp.Shutdown(context.Background())
		s, _ := priority.NewScheduler(priority.WithSlots(1), priority.WithMeterProvider(mp))
		defer s.Close()
		h := s.Middleware(handler)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = h(msg)
		}
	})
}

// BenchmarkPriorityQueued10k: cost per message with 10,000 waiting. One
// slot; 10,000 goroutines each acquire, release and queue again, so every
// grant pops the best of ~10,000 waiters and every release re-queues one.
// ns/op is per grant (a queue push, a pop and a goroutine hand-over),
// against a channel semaphore with as many blocked senders (FIFO only).
func BenchmarkPriorityQueued10k(b *testing.B) {
	const waiting = 10000
	run := func(b *testing.B, acq priorityScAcquirer, queued func() int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_ = acq.acquire(ctx, 9) // hold the slot while the waiters queue
		var grants atomic.Int64
		n := int64(b.N)
		var wg sync.WaitGroup
		for i := range waiting {
			wg.Go(func() {
				for ctx.Err() == nil && acq.acquire(ctx, i%priority.Levels) == nil {
					if grants.Add(1) >= n {
						cancel()
					}
					acq.release()
				}
			})
		}
		for queued() < waiting {
			runtime.Gosched()
		}
		b.ReportAllocs()
		b.ResetTimer()
		acq.release()
		wg.Wait()
		b.StopTimer()
	}
	b.Run("levee", func(b *testing.B) {
		s, _ := priority.NewScheduler(priority.WithSlots(1), priority.WithMaxWaiting(0))
		defer s.Close()
		run(b, priorityScSched{s}, func() int { return s.Stats().Waiting })
	})
	b.Run("chan-semaphore", func(b *testing.B) {
		var started atomic.Int64
		sem := make(priorityScFIFO, 1)
		run(b, priorityScCounting{sem, &started}, func() int {
			// Blocked senders are not observable; wait until all started
			// and give them time to block.
			if started.Load() >= waiting {
				time.Sleep(50 * time.Millisecond)
				return waiting
			}
			return 0
		})
	})
}

type priorityScCounting struct {
	priorityScFIFO
	started *atomic.Int64
}

func (c priorityScCounting) acquire(ctx context.Context, p int) error {
	c.started.Add(1)
	return c.priorityScFIFO.acquire(ctx, p)
}
