package ratelimit

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/testkit"
)

// TestAdaptiveRecoversAfterFastFailures: a downstream that answers in
// 20 ms goes down for 5 s and fails at once meanwhile (connection
// refused, 100 µs). The errors rightly cut the limit to Min. The automatic
// baseline learnt the failures' latency too (200 times below the healthy
// one), so after the recovery every healthy window looked congested by
// latency and the limit stayed at Min (10/s against a capacity of
// 1,000/s) until the 1% aging per window caught up: about 460 windows,
// each two seconds long at Min (min_samples), some fifteen minutes. The
// baseline now learns from successful calls only.
func TestAdaptiveRecoversAfterFastFailures(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithRate(200), WithAdaptive(Adaptive{Min: 10, Max: 1000}))
		var down, stop atomic.Bool
		h := l.Middleware(func(*message.Message) ([]*message.Message, error) {
			if down.Load() {
				time.Sleep(100 * time.Microsecond)
				return nil, errors.New("connection refused")
			}
			time.Sleep(20 * time.Millisecond)
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
			t.Fatalf("after 5 s of failures: rate %v, want Min (10)", got)
		}
		down.Store(false)
		time.Sleep(30 * time.Second)
		if got := l.Rate(); got < 500 {
			t.Errorf("30 s after the downstream recovered: rate %v, want at least 500 (capacity 1000/s)", got)
		}
	})
}
