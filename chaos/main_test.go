package chaos

import (
	"testing"

	"github.com/levee-dev/levee/internal/testkit"
)

func TestMain(m *testing.M) {
	ConsumerMain() // a plan's consumer process is the test binary started again
	testkit.VerifyMain(m)
}
