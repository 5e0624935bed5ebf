//go:build integration

package fleetredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/fleet"
)

// TestIdleMemberTakesNoProbeLease: on Redis, a member that reports
// with no message waiting (Idle) does not take a half-open fleet's probe
// lease; the next member with a message does. Before, the first member
// to report took it: an idle replica that reported first after open_for,
// and again after each probe_ttl, held the fleet half-open for good.
func TestIdleMemberTakesNoProbeLease(t *testing.T) {
	url, prefix := sharedRedis(t)
	ctx := context.Background()
	s, err := fleetredis.Open(ctx, url, prefix, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := fleet.Report{Key: "probe", Window: time.Second, MinRequests: 1, FailureRatio: 0.5,
		OpenFor: 50 * time.Millisecond, ProbeTTL: time.Minute, DrainWindow: time.Second, MemberTTL: time.Second}
	report := func(member string, failures uint64, idle bool) fleet.View {
		t.Helper()
		rr := r
		rr.Member, rr.Failures, rr.Idle = member, failures, idle
		v, err := s.Report(ctx, rr)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := report("busy", 5, false); v.State != fleet.StateOpen {
		t.Fatalf("after 5 failures: %v, want open", v.State)
	}
	time.Sleep(100 * time.Millisecond) // open_for
	if v := report("idle", 0, true); v.State != fleet.StateHalfOpen || v.Probe {
		t.Errorf("idle member: state %v, probe %v; want half-open without the lease", v.State, v.Probe)
	}
	if v := report("busy", 0, false); v.State != fleet.StateHalfOpen || !v.Probe {
		t.Errorf("member with a message waiting: state %v, probe %v; want half-open with the lease", v.State, v.Probe)
	}
}
