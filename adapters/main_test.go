package adapters_test

import (
	"os"
	"testing"

	"github.com/levee-dev/levee/internal/testkit"
)

func TestMain(m *testing.M) {
	if integration {
		os.Exit(m.Run())
	}
	testkit.VerifyMain(m)
}
