package fleet_test

import (
	"testing"

	"github.com/levee-dev/levee/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyMain(m) }
