package service_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/levee-dev/levee/internal/testkit"
)

// fleetChildEnv, set, makes the test binary a fleet replica.
const fleetChildEnv = "LEVEE_SVC_FLEET_CHILD"

// TestMain runs a fleet replica instead of the tests when a fleet test
// re-executes the test binary (LEVEE_SVC_FLEET_CHILD set). sarama (the
// Kafka client under watermill-kafka) starts go-metrics' process-wide
// meter goroutine once and never stops it; every other goroutine must be
// gone.
func TestMain(m *testing.M) {
	if os.Getenv(fleetChildEnv) != "" {
		os.Exit(runFleetChild())
	}
	testkit.VerifyMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}
