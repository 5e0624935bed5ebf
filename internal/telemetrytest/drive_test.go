package telemetrytest_test

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/metric"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
	"github.com/levee-dev/levee/tracing"
)

// samplesPerInstrument is how many values each driver puts through its
// instrument in TestDashboardQuantilesAgainstPrometheus (docs/TELEMETRY.md
// states it: TestQuantileDocStatesTheTest).
const samplesPerInstrument = 300

// A driver puts a chosen distribution through the real instruments of one
// concern, inside a synctest bubble (fake time, so a 20 s breaker wait
// takes no real time), and returns what really happened, measured by the
// test around the concern: the truth a dashboard quantile is compared with.
// Keys of the result are Prometheus metric names (without _bucket).
type driver struct {
	name string
	run  func(t *testing.T, mp metric.MeterProvider, n int) map[string][]float64
}

// lognormal returns n values of a log-normal distribution with the given
// median and sigma, taken at the quantiles (i+0.5)/n (no randomness: the
// distribution is known exactly), clamped to [lo, hi], in a fixed shuffled
// order.
func lognormal(n int, median, sigma, lo, hi float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		z := math.Sqrt2 * math.Erfinv(2*(float64(i)+0.5)/float64(n)-1)
		out[i] = min(max(median*math.Exp(sigma*z), lo), hi)
	}
	r := rand.New(rand.NewPCG(16, 1))
	r.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// drivers covers every duration histogram of Levee, and the batch size.
// Their distributions sit where each instrument is meant to measure.
func drivers() []driver {
	return []driver{
		{"handler", driveHandler},
		{"batch", driveBatch},
		{"breaker wait", driveBreakerWait},
		{"breaker drain", driveDrain},
		{"ratelimit", driveRateLimit},
		{"priority", drivePriority},
	}
}

// driveHandler: handlers taking 20 ms at the median, p99 about 200 ms.
func driveHandler(t *testing.T, mp metric.MeterProvider, n int) map[string][]float64 {
	m, err := tracing.NewMetrics(tracing.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	var truth []float64
	for _, d := range lognormal(n, 0.02, 1, 0, 50) {
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) {
			time.Sleep(secs(d))
			return nil, nil
		})
		start := time.Now()
		if _, err := h(message.NewMessage("h", nil)); err != nil {
			t.Fatal(err)
		}
		truth = append(truth, time.Since(start).Seconds())
	}
	return map[string][]float64{"levee_handler_duration_seconds": truth}
}

// driveBatch: batches of 20 messages at the median (p99 about 130), whose
// func takes 50 ms at the median. Each batch's messages arrive together and
// are flushed by max wait.
func driveBatch(t *testing.T, mp metric.MeterProvider, n int) map[string][]float64 {
	sizes := lognormal(n, 20, 0.8, 1, 5000)
	durs := lognormal(n, 0.05, 0.8, 0, 50)
	var mu sync.Mutex
	var dur float64
	var gotSizes, gotDurs []float64
	bt, err := batch.New(func(_ context.Context, msgs []*message.Message) error {
		start := time.Now()
		mu.Lock()
		d := dur
		mu.Unlock()
		time.Sleep(secs(d))
		mu.Lock()
		gotSizes, gotDurs = append(gotSizes, float64(len(msgs))), append(gotDurs, time.Since(start).Seconds())
		mu.Unlock()
		return nil
	}, batch.WithMaxSize(10000), batch.WithMaxWait(10*time.Millisecond), batch.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bt.Close() }()
	for i := range sizes {
		mu.Lock()
		dur = durs[i]
		mu.Unlock()
		var wg sync.WaitGroup
		for range int(math.Round(sizes[i])) {
			wg.Go(func() {
				if _, err := bt.Handler(message.NewMessage("b", nil)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	return map[string][]float64{"levee_batch_size": gotSizes, "levee_batch_duration_seconds": gotDurs}
}

// driveBreakerWait: a breaker forced open for 5 s at the median (p99 about
// 20 s) while one message waits.
func driveBreakerWait(t *testing.T, mp metric.MeterProvider, n int) map[string][]float64 {
	br, err := breaker.New(breaker.WithName("pause"), breaker.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = br.Close() }()
	var truth []float64
	for _, d := range lognormal(n, 5, 0.6, 0, 500) {
		var entered time.Time
		h := br.Middleware(func(*message.Message) ([]*message.Message, error) {
			entered = time.Now()
			return nil, nil
		})
		br.ForceOpen()
		start := time.Now()
		done := make(chan error, 1)
		go func() { _, err := h(message.NewMessage("w", nil)); done <- err }()
		synctest.Wait()
		time.Sleep(secs(d))
		br.ClearForce()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		truth = append(truth, entered.Sub(start).Seconds())
	}
	return map[string][]float64{"levee_breaker_wait_duration_seconds": truth}
}

// paced sends one message per call to h, timed so that each waits about
// the given time for a bucket of one token per interval: a message sent
// interval-d after the previous one was admitted waits d. It returns the
// waits measured around h.
func paced(t *testing.T, h message.HandlerFunc, entered *time.Time, waits []float64, interval time.Duration) []float64 {
	var truth []float64
	last := time.Now()
	for _, d := range waits {
		time.Sleep(time.Until(last.Add(interval - secs(d))))
		start := time.Now()
		if _, err := h(message.NewMessage("p", nil)); err != nil {
			t.Fatal(err)
		}
		truth = append(truth, entered.Sub(start).Seconds())
		last = *entered
	}
	return truth
}

// driveDrain: the drain ramp after recovery, held at 2 messages per second
// (10% of 20/s over a window of years), with waits of 10 ms at the median.
func driveDrain(t *testing.T, mp metric.MeterProvider, n int) map[string][]float64 {
	br, err := breaker.New(breaker.WithName("drain"), breaker.WithMeterProvider(mp),
		breaker.WithDrain(1e5*time.Hour, 0.1, 1), breaker.WithDrainRate(20))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = br.Close() }()
	br.ForceOpen()
	br.ClearForce() // leaving a forced open for closed starts a drain
	var entered time.Time
	h := br.Middleware(func(*message.Message) ([]*message.Message, error) {
		entered = time.Now()
		return nil, nil
	})
	truth := paced(t, h, &entered, lognormal(n, 0.01, 1, 0, 0.45), 500*time.Millisecond)
	return map[string][]float64{"levee_breaker_drain_wait_duration_seconds": truth}
}

// driveRateLimit: a 2/s limiter with a burst of 1, waits of 3 ms at the
// median (p99 about 50 ms).
func driveRateLimit(t *testing.T, mp metric.MeterProvider, n int) map[string][]float64 {
	rl, err := ratelimit.New(ratelimit.WithName("paced"), ratelimit.WithRate(2), ratelimit.WithBurst(1),
		ratelimit.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rl.Close() }()
	var entered time.Time
	h := rl.Middleware(func(*message.Message) ([]*message.Message, error) {
		entered = time.Now()
		return nil, nil
	})
	truth := paced(t, h, &entered, lognormal(n, 0.003, 1.2, 0, 0.45), 500*time.Millisecond)
	return map[string][]float64{"levee_ratelimit_wait_duration_seconds": truth}
}

// drivePriority: a one-slot scheduler whose slot is held for 20 ms at the
// median (p99 about 200 ms, the 162 ms case) while a message waits.
func drivePriority(t *testing.T, mp metric.MeterProvider, n int) map[string][]float64 {
	s, err := priority.NewScheduler(priority.WithName("shared"), priority.WithSlots(1), priority.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	var truth []float64
	for _, d := range lognormal(n, 0.02, 1, 0, 50) {
		var entered time.Time
		h := s.Middleware(func(*message.Message) ([]*message.Message, error) {
			entered = time.Now()
			return nil, nil
		})
		if err := s.Acquire(context.Background(), priority.MinPriority); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		done := make(chan error, 1)
		go func() { _, err := h(message.NewMessage("q", nil)); done <- err }()
		synctest.Wait()
		time.Sleep(secs(d))
		s.Release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		truth = append(truth, entered.Sub(start).Seconds())
	}
	return map[string][]float64{"levee_priority_wait_duration_seconds": truth}
}
