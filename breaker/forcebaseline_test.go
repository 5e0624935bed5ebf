package breaker_test

import (
	"context"
	"testing"
	"time"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestForcedClosedTrafficCountsInTheBaseline: the drain's 100% is the
// throughput of successful calls while closed. Calls let through while
// the breaker is forced closed are such calls: a service that ran 1000/s
// forced closed for a minute and tripped soon after the force was
// cleared drains from about 1000/s. Before, forced-closed calls were not
// measured, so the minute counted as idle and the baseline fell to about
// 300/s: a drain three times too slow, holding the backlog to max hold.
func TestForcedClosedTrafficCountsInTheBaseline(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		const openFor = time.Second
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(openFor),
			breaker.WithDrain(10*time.Second, 0.1, 1))
		r := &recorder{}
		h := b.Middleware(r.handle)
		ctx, cancel := context.WithCancel(context.Background())
		wg := flood(ctx, h, 1) // one worker at 1ms a call: 1000/s
		time.Sleep(10 * time.Second)
		b.ForceClosed()
		time.Sleep(time.Minute)
		b.ClearForce()
		time.Sleep(time.Second)
		cancel()
		wg.Wait()
		tripAndRecover(t, b, h, r, openFor)
		if base := b.Baseline(); base < 900 || base > 1000 {
			t.Fatalf("baseline: got %.1f/s, want about 1000/s", base)
		}
	})
}
