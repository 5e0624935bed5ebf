package fleetredis_test

import (
	"os"
	"testing"

	"github.com/levee-dev/levee/internal/testkit"
)

// TestMain runs a child replica instead of the tests when the integration
// tests re-execute the test binary (LEVEE_FLEET_CHILD set).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	testkit.VerifyMain(m)
}
