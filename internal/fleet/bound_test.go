package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestFleetBoundCountsHeldLeases: the tokens replicas hold when a window
// begins are spent in it on top of what the shared bucket grants, so the
// fleet admits up to rate x window + burst + one lease per replica
// (docs/FLEET.md), not rate x window + burst as the doc said before:
// replicas joining one lease period apart each take a full first lease
// and keep it two periods, while the bucket refills; a flood then gets
// their leases and the full bucket at once.
func TestFleetBoundCountsHeldLeases(t *testing.T) {
	const rate = 200
	lease := int(rate * fleet.DefaultPeriod.Seconds()) // also the burst
	for _, n := range []int{2, 3, 4} {
		testkit.Synctest(t, func(t *testing.T) {
			s := fleet.NewMemStore()
			ctx := context.Background()
			var ps []*fleet.Pool
			for i := range n {
				if i > 0 {
					time.Sleep(fleet.DefaultPeriod)
				}
				p := newPool(t, s, string(rune('a'+i)), rate, fleet.Local)
				defer p.Close()
				ps = append(ps, p)
				if !p.Take(ctx, 0, true).OK() { // its first lease: a full one
					t.Fatal("first message not admitted")
				}
			}
			time.Sleep(fleet.DefaultPeriod - 10*time.Millisecond) // before the last idle give-back
			admitted := 0
			for end := time.Now().Add(time.Second); time.Now().Before(end); {
				took := false
				for _, p := range ps {
					if p.TryTake() {
						admitted++
						took = true
					}
				}
				if !took {
					time.Sleep(time.Millisecond)
				}
			}
			bucket := rate + lease
			t.Logf("%d replicas: admitted %d in 1s; the bucket grants at most %d", n, admitted, bucket)
			if admitted <= bucket {
				t.Errorf("%d replicas admitted %d in 1s, want more than rate x window + burst (%d), as docs/FLEET.md says", n, admitted, bucket)
			}
			if hi := bucket + n*lease; admitted > hi {
				t.Errorf("%d replicas admitted %d in 1s, want at most rate x window + burst + %d leases = %d", n, admitted, n, hi)
			}
		})
	}
}
