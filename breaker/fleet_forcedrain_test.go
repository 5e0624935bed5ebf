package breaker_test

import (
	"context"
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

// TestFleetKillSwitchReleaseDrains: releasing the fleet's kill switch
// (force open, then none) from a closed fleet starts a drain, as
// Breaker.ClearForce does after ForceOpen: the backlog held while forced
// open reaches the downstream along the ramp, from the fleet's
// throughput before the force (measured over the window), not at once.
// Before, the fleet closed at once and every held message ran together.
func TestFleetKillSwitchReleaseDrains(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		b, err := breaker.NewFleet(breaker.Fleet{Store: s, Key: "payments", Member: "a", MinRequests: 10,
			Window: time.Second, OpenFor: time.Second, DrainWindow: 10 * time.Second, MaxHold: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var calls atomic.Int64
		h := b.Middleware(func(*message.Message) ([]*message.Message, error) {
			calls.Add(1)
			time.Sleep(time.Millisecond)
			return nil, nil
		})
		// 100/s for a second: the window's throughput.
		for i := range 100 {
			_, _ = h(message.NewMessage(fmt.Sprint("before-", i), nil))
			time.Sleep(9 * time.Millisecond)
		}
		if err := b.SetForce(context.Background(), breaker.ForceOpen); err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s after force open, want open", st)
		}
		var wg sync.WaitGroup
		for i := range 200 { // the backlog held by the kill switch
			wg.Go(func() { _, _ = h(message.NewMessage(fmt.Sprint("held-", i), nil)) })
		}
		testkit.Advance(5 * time.Second)
		calls.Store(0)
		if err := b.SetForce(context.Background(), breaker.ForceNone); err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetDraining {
			t.Errorf("state %s after releasing the kill switch, want draining", st)
		}
		testkit.Advance(time.Second)
		// The ramp from 10% of 100/s admits about 10-20 in its first
		// second (plus a lease of the drain pool held ahead).
		if n := calls.Load(); n > 40 {
			t.Errorf("%d of the 200 held messages ran in the first second after the release, want the drain's ramp (about 15)", n)
		}
		wg.Wait()
	})
}
