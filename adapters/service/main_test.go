package service_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/levee-dev/levee/internal/testkit"
)

// sarama (the Kafka client under watermill-kafka) starts go-metrics'
// process-wide meter goroutine once and never stops it; every other
// goroutine must be gone.
func TestMain(m *testing.M) {
	testkit.VerifyMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}
