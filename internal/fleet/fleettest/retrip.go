package fleettest

import (
	"context"
	"fmt"
	"time"

	"github.com/levee-dev/levee/fleet"
)

// RetripKeepsTheBaseline checks that a trip during the drain keeps the
// drain's baseline measured before the outage, as the local breaker does:
// the window of a drain holds only what the ramp let through. A store that
// made each trip's window the baseline drained a downstream that flapped
// twice from a tenth of a tenth of its throughput.
//
// The fleet runs at 200 outcomes a second of window (window is the
// breaker's window; a store on a real clock needs one long enough that
// the scenario's reports fall in it), trips, and twice goes half-open,
// drains and trips again on the drain's failures; it sleeps twice open_for
// (50 ms) each time, so under testing/synctest it takes no real time.
func RetripKeepsTheBaseline(ctx context.Context, s fleet.BreakerStore, window time.Duration) error {
	r := fleet.Report{Key: "retrip", Member: "a", Window: window, MinRequests: 10, FailureRatio: 0.5,
		OpenFor: 50 * time.Millisecond, ProbeTTL: time.Minute, DrainWindow: 10 * time.Second, MemberTTL: time.Minute}
	report := func(succ, fail uint64, probe int) (fleet.View, error) {
		rr := r
		rr.Successes, rr.Failures, rr.Probe = succ, fail, probe
		return s.Report(ctx, rr)
	}
	half := uint64(100 * window.Seconds()) // 200 outcomes per second of window
	if _, err := report(half, 0, 0); err != nil {
		return err
	}
	v, err := report(0, half, 0)
	if err != nil {
		return err
	}
	if v.State != fleet.StateOpen || v.Baseline != 200 {
		return fmt.Errorf("after the trip: state %v, baseline %v; want open, 200", v.State, v.Baseline)
	}
	for range 2 {
		time.Sleep(2 * r.OpenFor)
		if v, err = report(0, 0, 0); err != nil {
			return err
		}
		if v.State != fleet.StateHalfOpen || !v.Probe {
			return fmt.Errorf("after open_for: state %v, probe %v; want half-open with the lease", v.State, v.Probe)
		}
		if v, err = report(0, 0, 1); err != nil {
			return err
		}
		if v.State != fleet.StateDraining {
			return fmt.Errorf("after a good probe: state %v, want draining", v.State)
		}
		// What the ramp let through, a tenth of the throughput; half of
		// it fails: the fleet trips.
		if v, err = report(half/10, half/10, 0); err != nil {
			return err
		}
		if v.State != fleet.StateOpen {
			return fmt.Errorf("after failures while draining: state %v, want open", v.State)
		}
		if v.Baseline != 200 {
			return fmt.Errorf("baseline after a trip during the drain: %v, want the 200/s before the outage", v.Baseline)
		}
	}
	return nil
}
