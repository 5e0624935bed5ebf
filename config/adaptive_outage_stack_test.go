package config_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/config"
)

const adaptiveOutageYAML = `
handlers:
  h:
    dlq: {topic: h.dlq, max_hold: 20s, retry: {max_attempts: 1000, initial: 50ms, max: 1s}}
    breaker: {failure_ratio: 50%, min_requests: 20, open_for: 2s, drain: {window: 5s, start: 10%}}
    ratelimit:
      rate: 200/s
      adaptive: {min: 10/s, max: 1000/s}
    timeout: 1s
`

// TestAdaptiveRecoversInTheCanonicalStack: an adaptive limit with the
// automatic latency target, in the stack config.Build makes (dlq, breaker,
// ratelimit, timeout), in front of a downstream that answers in 20 ms
// (capacity 1,000/s for 20 workers) and fails at once for 5 s (connection
// refused). The errors cut the limit to its min, 10/s; the breaker opens
// and drains. Once the downstream is back, the limit must climb back:
// before the baseline learnt from successful calls only, it stayed at
// 10/s for 15 minutes (the outage's 100 µs failures had set the baseline,
// so every healthy window looked congested).
func TestAdaptiveRecoversInTheCanonicalStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := config.Parse("levee.yaml", []byte(adaptiveOutageYAML), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := config.Build(cfg, config.Deps{Publisher: discard{}})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		l, _ := a.Limiter("h")
		var down, stop atomic.Bool
		var ok atomic.Int64
		h := a.Stack("h").Middleware(func(*message.Message) ([]*message.Message, error) {
			if down.Load() {
				time.Sleep(100 * time.Microsecond)
				return nil, errors.New("connection refused")
			}
			time.Sleep(20 * time.Millisecond)
			ok.Add(1)
			return nil, nil
		})
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for !stop.Load() {
					_, _ = h(message.NewMessage("m", nil))
				}
			})
		}
		defer func() { stop.Store(true); wg.Wait() }()
		time.Sleep(10 * time.Second)
		down.Store(true)
		time.Sleep(5 * time.Second)
		if got := l.Rate(); got != 10 {
			t.Fatalf("after 5 s of failures: limit %v, want its min (10/s)", got)
		}
		down.Store(false)
		time.Sleep(30 * time.Second)
		n := ok.Load()
		time.Sleep(5 * time.Second)
		if got, done := l.Rate(), float64(ok.Load()-n)/5; got < 500 || done < 500 {
			t.Errorf("30 s after the downstream recovered: limit %v, %.0f successful calls/s; want both at least 500 (capacity 1000/s)", got, done)
		}
	})
}
