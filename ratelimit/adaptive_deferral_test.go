package ratelimit

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestAdaptiveIgnoresDeferrals: a deferral returned from behind an
// adaptive limiter (a handler's levee.Defer, a batcher that is closing or
// found no free batch slot by the delivery's hold) means the handler did
// not run the message: backpressure, not a downstream failure (the
// deferral contract). It must not cut the rate, as it does not trip a
// breaker. Before the fix every deferral counted as a failed call, and a
// stream of them took the limit down to Min.
func TestAdaptiveIgnoresDeferrals(t *testing.T) {
	closing := levee.DeferralSentinel("levee/batch: batcher closed")
	for _, tc := range []struct {
		name string
		err  func(i int) error
	}{
		{"every call deferred", func(int) error { return levee.Defer(time.Second, nil) }},
		{"wrapped sentinel", func(int) error { return fmt.Errorf("flush: %w", closing) }},
		{"every other call deferred", func(i int) error {
			if i%2 == 0 {
				return levee.Defer(time.Second, nil)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				const start = 500.0
				l := mustNew(t, WithRate(start), WithAdaptive(Adaptive{Min: 10, Max: 1000, TargetLatency: 50 * time.Millisecond}))
				var mu sync.Mutex
				n := 0
				h := l.Middleware(func(*message.Message) ([]*message.Message, error) {
					mu.Lock()
					i := n
					n++
					mu.Unlock()
					time.Sleep(5 * time.Millisecond)
					return nil, tc.err(i)
				})
				var wg sync.WaitGroup
				for range 10 {
					wg.Go(func() {
						for range 200 {
							_, _ = h(message.NewMessage("m", nil))
						}
					})
				}
				wg.Wait()
				if got := l.Rate(); got < start {
					t.Errorf("after 2000 calls, deferred as shown: got rate %v, want at least the initial %v", got, start)
				}
			})
		})
	}
}

// TestAdaptiveDeferralsDoNotRaiseRate: a deferred message took a permit
// but the downstream did no work for it (a handler's levee.Defer on a
// downstream's 429, a batcher closing). Its permit must not make the
// window look limiter-bound: with half the permits deferred, only half the
// limit reached the downstream, and the controller must not raise the
// rate (it neither cuts it: backpressure is not failure). Before the fix
// deferred permits counted as used, and a downstream answering every
// other call with 429 saw the rate climb to Max.
func TestAdaptiveDeferralsDoNotRaiseRate(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		const start = 500.0
		l := mustNew(t, WithRate(start), WithAdaptive(Adaptive{Min: 10, Max: 1000, TargetLatency: 50 * time.Millisecond}))
		var mu sync.Mutex
		n := 0
		h := l.Middleware(func(*message.Message) ([]*message.Message, error) {
			mu.Lock()
			i := n
			n++
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			if i%2 == 0 {
				return nil, levee.Defer(time.Second, errors.New("429 too many requests"))
			}
			return nil, nil
		})
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				for range 400 {
					_, _ = h(message.NewMessage("m", nil))
				}
			})
		}
		wg.Wait()
		if got := l.Rate(); got != start {
			t.Errorf("after 4000 calls, every other one deferred: rate %v, want %v (neither raised nor cut)", got, start)
		}
	})
}
