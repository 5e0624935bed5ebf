package breaker_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestTripReleasesNoDrainWaiterToTheDownstream: messages the breaker let
// through while it drained wait for the ramp's tokens; when the breaker
// trips again meanwhile, none of them goes on to the downstream that just
// failed. With the drain in Middleware they go back to waiting for the
// breaker; with a separate drain (DrainMiddleware, inside priority: what
// YAML builds) each is deferred with the time left until half-open, so
// that its delivery is not spent on a downstream known to be down. Before,
// the trip ended the drain's bucket, which let every queued message run at
// once: eight calls to the failed downstream within a millisecond of the
// trip, each a failed dlq attempt.
func TestTripReleasesNoDrainWaiterToTheDownstream(t *testing.T) {
	for _, separate := range []bool{false, true} {
		name := "in Middleware"
		if separate {
			name = "separate"
		}
		t.Run(name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				const openFor = time.Second
				opts := []breaker.Option{breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(openFor),
					breaker.WithDrain(10*time.Second, 0.1, 1), breaker.WithDrainRate(10), breaker.WithMaxHold(5 * time.Second)}
				if separate {
					opts = append(opts, breaker.WithSeparateDrain())
				}
				b := mustNew(t, opts...)
				r := &recorder{}
				h := b.Middleware(b.DrainMiddleware(r.handle))
				tripAndRecover(t, b, h, r, openFor)
				// The drain admits 1/s at first: one message runs, the
				// others queue for the ramp's tokens.
				errs := make([]error, 8)
				var wg sync.WaitGroup
				for i := range errs {
					wg.Go(func() { errs[i] = call(t, h) })
				}
				time.Sleep(100 * time.Millisecond)
				r.setFail(true) // the next message to get a token fails: the breaker trips
				for b.State() != breaker.StateOpen {
					time.Sleep(time.Millisecond)
				}
				tripped := time.Now().Add(time.Millisecond) // the tripping call's 1ms is over
				time.Sleep(openFor / 2)
				if n := r.between(tripped, time.Now()); n != 0 {
					t.Errorf("%d handler calls in the %v after the trip, want none while open", n, openFor/2)
				}
				r.setFail(false)
				wg.Wait()
				failed := 0
				for i, err := range errs {
					var oe *breaker.OpenError
					switch {
					case errors.Is(err, errDown):
						failed++
					case errors.As(err, &oe):
						if oe.RetryAfter() <= 0 {
							t.Errorf("message %d: deferred with RetryAfter %v, want the time left until half-open", i, oe.RetryAfter())
						}
					case err != nil:
						t.Errorf("message %d: %v, want nil, the downstream's error or a deferral", i, err)
					}
				}
				if failed != 1 {
					t.Errorf("%d messages ran on the failing downstream, want 1 (the one that tripped the breaker)", failed)
				}
			})
		})
	}
}
