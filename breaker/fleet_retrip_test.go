package breaker_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestFleetTripReleasesNoDrainWaiterToTheDownstream: messages waiting for
// the fleet drain's tokens when the fleet trips again do not go on to the
// downstream while the fleet is open: they wait for the fleet again (or
// are deferred at the max hold). Before, they went on taking the drain
// pool's tokens at its last rate and ran on the failed downstream for as
// long as the fleet stayed open.
func TestFleetTripReleasesNoDrainWaiterToTheDownstream(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		b, err := breaker.NewFleet(breaker.Fleet{Store: s, Key: "payments", Member: "a", MinRequests: 4,
			Window: time.Second, OpenFor: 2 * time.Second, DrainWindow: 10 * time.Second, DrainRate: 100,
			MaxHold: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var down atomic.Bool
		var mu sync.Mutex
		var calls []time.Time
		h := b.Middleware(func(*message.Message) ([]*message.Message, error) {
			mu.Lock()
			calls = append(calls, time.Now())
			mu.Unlock()
			time.Sleep(time.Millisecond)
			if down.Load() {
				return nil, errDownstream
			}
			return nil, nil
		})
		down.Store(true)
		for i := range 4 {
			_, _ = h(message.NewMessage(fmt.Sprint("down-", i), nil))
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s after 4 failures, want open", st)
		}
		down.Store(false)
		testkit.Advance(2*time.Second + breaker.DefaultFleetReportEvery)
		if _, err := h(message.NewMessage("probe", nil)); err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetDraining {
			t.Fatalf("state %s after a good probe, want draining", st)
		}
		// The drain admits about 10/s at first: a backlog of 60 waits.
		var wg sync.WaitGroup
		for i := range 60 {
			wg.Go(func() { _, _ = h(message.NewMessage(fmt.Sprint("m-", i), nil)) })
		}
		testkit.Advance(500 * time.Millisecond)
		down.Store(true)
		for b.State() != breaker.FleetOpen {
			testkit.Advance(10 * time.Millisecond)
		}
		open := time.Now()
		testkit.Advance(time.Second)
		mu.Lock()
		n := 0
		for _, c := range calls {
			if c.After(open) {
				n++
			}
		}
		mu.Unlock()
		if n > 0 {
			t.Errorf("%d handler calls in the second after this replica learned the fleet is open again, want none", n)
		}
		down.Store(false)
		wg.Wait()
	})
}
