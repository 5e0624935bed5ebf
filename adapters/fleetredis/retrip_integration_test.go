//go:build integration

package fleetredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/fleet"
)

// TestRetripDuringDrainKeepsTheBaselineOnRedis: on Redis, a trip during
// the drain keeps the baseline measured before the outage, as the local
// breaker and the memory store do (internal/fleet
// TestRetripDuringDrainKeepsTheBaseline). Before, the script made the
// drain's window, which holds what the ramp let through, the new 100%.
func TestRetripDuringDrainKeepsTheBaselineOnRedis(t *testing.T) {
	url, prefix := sharedRedis(t)
	ctx := context.Background()
	s, err := fleetredis.Open(ctx, url, prefix, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := fleet.Report{Key: "retrip", Member: "a", Window: time.Minute, MinRequests: 10, FailureRatio: 0.5,
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
	report(6000, 0, 0)
	v := report(0, 6000, 0) // 12,000 outcomes in the 1 minute window: 200/s
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
		// What the ramp let through; half of it fails: the fleet trips.
		if v = report(600, 600, 0); v.State != fleet.StateOpen {
			t.Fatalf("after failures while draining: state %v, want open", v.State)
		}
		if v.Baseline != 200 {
			t.Errorf("baseline after a trip during the drain: %v, want the 200/s before the outage", v.Baseline)
		}
	}
}
