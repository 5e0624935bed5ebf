package breaker_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestFleetBreakerStoreLostWhileDraining: with on_store_error local, a
// store that fails while the fleet drains leaves the replica on the last
// fleet state (docs/FLEET.md), draining on its own clock at its share of
// the ramp, then closed once the drain window has passed. Before, it
// closed at once: the backlog the drain exists to pace hit the downstream
// that had just recovered, at full speed.
func TestFleetBreakerStoreLostWhileDraining(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		b := newFleet(t, s, "a", breaker.OnStoreError(fleet.Local))
		defer b.Close()
		var down atomic.Bool
		down.Store(true)
		var calls atomic.Int64
		h := b.Middleware(func(*message.Message) ([]*message.Message, error) {
			if down.Load() {
				return nil, errDownstream
			}
			calls.Add(1)
			return nil, nil
		})
		for i := range 10 {
			_, _ = h(message.NewMessage(fmt.Sprint("down-", i), nil))
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s after the failures, want open", st)
		}
		down.Store(false)
		probed := make(chan struct{})
		go func() { _, _ = h(message.NewMessage("probe", nil)); close(probed) }()
		testkit.Advance(time.Second + 2*breaker.DefaultFleetReportEvery)
		<-probed
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetDraining {
			t.Fatalf("state %s after a good probe, want draining", st)
		}

		s.SetErr(errors.New("store down"))
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetDraining {
			t.Errorf("state %s with the store down while draining, want draining (the last fleet state)", st)
		}
		calls.Store(0)
		const backlog = 200
		done := make(chan struct{}, backlog)
		for i := range backlog {
			go func() { _, _ = h(message.NewMessage(fmt.Sprint("backlog-", i), nil)); done <- struct{}{} }()
		}
		testkit.Advance(100 * time.Millisecond)
		// The ramp is below 100/s (DrainRate) for the whole window: at most
		// 10 calls in 100ms, and a token or two of burst.
		if n := calls.Load(); n > 15 {
			t.Errorf("%d of a backlog of %d ran in the 100ms after the store failed while draining, want at most 15 (the ramp, below 100/s)", n, backlog)
		}
		testkit.Advance(5 * time.Second) // the drain window passes (and the max hold): the rest run or are deferred
		for range backlog {
			<-done
		}
		if st := b.State(); st != breaker.FleetClosed {
			t.Errorf("state %s after the drain window with the store down, want closed", st)
		}
	})
}
