//go:build integration

package fleetredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/fleet"
)

// TestKillSwitchReleaseDrainsOnRedis: on Redis, the first report after
// the kill switch forced a closed fleet open takes the window's
// throughput as the baseline, and the first after its release starts a
// drain from it (breaker TestFleetKillSwitchReleaseDrains, on the memory
// store). Before, the release closed the fleet at once: every message
// held while forced open ran together. Forced closed and released, or a
// release while the fleet is open, starts none.
func TestKillSwitchReleaseDrainsOnRedis(t *testing.T) {
	url, prefix := sharedRedis(t)
	ctx := context.Background()
	s, err := fleetredis.Open(ctx, url, prefix, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := fleet.Report{Key: "force", Member: "a", Window: time.Minute, MinRequests: 10, FailureRatio: 0.5,
		OpenFor: time.Minute, ProbeTTL: time.Minute, DrainWindow: 10 * time.Second, MemberTTL: time.Minute}
	report := func(succ uint64) fleet.View {
		t.Helper()
		rr := r
		rr.Successes = succ
		v, err := s.Report(ctx, rr)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	force := func(f fleet.Force) {
		t.Helper()
		if err := s.SetForce(ctx, "force", f); err != nil {
			t.Fatal(err)
		}
	}
	report(6000) // 100/s over the 1 minute window
	force(fleet.ForceClosed)
	report(0)
	force(fleet.ForceNone)
	if v := report(0); v.State != fleet.StateClosed {
		t.Fatalf("after a force closed was released: %v, want closed (no drain)", v.State)
	}
	force(fleet.ForceOpen)
	if v := report(0); v.State != fleet.StateOpen {
		t.Fatalf("forced open: %v, want open", v.State)
	}
	report(0)
	force(fleet.ForceNone)
	v := report(0)
	if v.State != fleet.StateDraining || v.Baseline != 100 {
		t.Fatalf("after the release: state %v, baseline %v; want draining from 100/s", v.State, v.Baseline)
	}
	if v = report(0); v.State != fleet.StateDraining {
		t.Fatalf("next report: %v, want still draining", v.State)
	}
}
