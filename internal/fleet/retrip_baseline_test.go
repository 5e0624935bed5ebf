package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/fleet/fleettest"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestRetripDuringDrainKeepsTheBaseline: the drain's 100% is the fleet's
// throughput before the outage; a trip during the drain keeps it
// (fleettest.RetripKeepsTheBaseline; adapters/fleetredis runs it on Redis:
// TestRetripDuringDrainKeepsTheBaselineOnRedis).
func TestRetripDuringDrainKeepsTheBaseline(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		if err := fleettest.RetripKeepsTheBaseline(context.Background(), fleet.NewMemStore(), time.Second); err != nil {
			t.Fatal(err)
		}
	})
}
