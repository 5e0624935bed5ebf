//go:build integration

package fleetredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/internal/fleet/fleettest"
)

// TestRetripDuringDrainKeepsTheBaselineOnRedis: on Redis, a trip during
// the drain keeps the baseline measured before the outage, as the local
// breaker and the memory store do (fleettest.RetripKeepsTheBaseline).
// Before, the script made the drain's window, which holds what the ramp
// let through, the new 100%.
func TestRetripDuringDrainKeepsTheBaselineOnRedis(t *testing.T) {
	url, prefix := sharedRedis(t)
	ctx := context.Background()
	s, err := fleetredis.Open(ctx, url, prefix, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A minute's window: the reports of the scenario, on the real clock,
	// all fall in it.
	if err := fleettest.RetripKeepsTheBaseline(ctx, s, time.Minute); err != nil {
		t.Fatal(err)
	}
}
