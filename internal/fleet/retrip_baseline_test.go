package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestRetripDuringDrainKeepsTheBaseline: the drain's 100% is the fleet's
// throughput before the outage. A trip during the drain keeps it, as the
// local breaker does: the window of a drain holds only what the ramp let
// through. Before, each trip during a drain made that window the
// baseline, so a downstream that flapped twice drained the third time
// from a tenth of a tenth of its throughput.
func TestRetripDuringDrainKeepsTheBaseline(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		keepsTheBaselineThroughADrain(t, s)
	})
}

// keepsTheBaselineThroughADrain runs the scenario on s
// (adapters/fleetredis runs it on Redis: TestRetripDuringDrainKeepsTheBaselineOnRedis).
func keepsTheBaselineThroughADrain(t *testing.T, s fleet.BreakerStore) {
	t.Helper()
	ctx := context.Background()
	r := fleet.Report{Key: "retrip", Member: "a", Window: time.Second, MinRequests: 10, FailureRatio: 0.5,
		OpenFor: 50 * time.Millisecond, ProbeTTL: time.Minute, DrainWindow: 10 * time.Second, MemberTTL: time.Minute}
	report := func(succ, fail uint64, probe int) fleet.View {
		t.Helper()
		rr := r
		rr.Successes, rr.Failures, rr.Probe = succ, fail, probe
		v, err := s.Report(ctx, rr)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	report(100, 0, 0)
	v := report(0, 100, 0) // 200 outcomes in the 1s window: 200/s
	if v.State != fleet.StateOpen || v.Baseline != 200 {
		t.Fatalf("after the trip: state %v, baseline %v; want open, 200", v.State, v.Baseline)
	}
	for range 2 {
		time.Sleep(100 * time.Millisecond) // open_for
		if v = report(0, 0, 0); v.State != fleet.StateHalfOpen || !v.Probe {
			t.Fatalf("after open_for: state %v, probe %v; want half-open with the lease", v.State, v.Probe)
		}
		if v = report(0, 0, 1); v.State != fleet.StateDraining {
			t.Fatalf("after a good probe: state %v, want draining", v.State)
		}
		// The ramp lets 20/s through; half of it fails: the fleet trips.
		if v = report(10, 10, 0); v.State != fleet.StateOpen {
			t.Fatalf("after failures while draining: state %v, want open", v.State)
		}
		if v.Baseline != 200 {
			t.Errorf("baseline after a trip during the drain: %v, want the 200/s before the outage", v.Baseline)
		}
	}
}
