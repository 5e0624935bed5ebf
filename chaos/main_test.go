package chaos

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/levee-dev/levee/internal/testkit"
)

func TestMain(m *testing.M) {
	ConsumerMain() // a plan's consumer process is the test binary started again
	// sarama (the Kafka client) starts go-metrics' meter goroutine once
	// per process and never stops it.
	testkit.VerifyMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}
