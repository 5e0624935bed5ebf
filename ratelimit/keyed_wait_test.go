package ratelimit

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/testkit"
)

// TestPerKeyMaxWaitBoundsTheWhole: with per-key limits and a rate of the
// limiter's own, a message waits for its key's token and then for the
// limiter's. max_wait (or max_hold, the smaller applies) bounds the two
// together: a message that would wait 1s for its key and then 1s for the
// limiter is deferred at max_wait 1.5s, never admitted after 2s (before
// the fix each wait was bounded on its own, so a message waited up to
// twice max_wait, past a max_hold set from the ack deadline).
func TestPerKeyMaxWaitBoundsTheWhole(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"max_wait", WithMaxWait(1500 * time.Millisecond)},
		{"max_hold", WithMaxHold(1500 * time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				const bound = 1500 * time.Millisecond
				l := mustNew(t, WithRate(1), WithKeyMetadata("customer_id"), WithPerKey(1, 1), tc.opt)
				h := l.Middleware(noop)
				start := time.Now()
				if _, err := h(keyedMsg("a")); err != nil { // both tokens of t=0
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				wg.Go(func() { _, _ = h(keyedMsg("b")) }) // the limiter's token of t=1s
				time.Sleep(time.Millisecond)
				_, err := h(keyedMsg("a")) // a's token of t=1s, the limiter's of t=2s
				took := time.Since(start)
				wg.Wait()
				if err == nil && took > bound {
					t.Fatalf("admitted after %v, want a deferral or admission within %v", took, bound)
				}
				if err != nil && !errors.Is(err, ErrLimited) {
					t.Fatalf("got %v, want ErrLimited", err)
				}
			})
		})
	}
}
