//go:build !integration

package amqp

import (
	"testing"

	"github.com/levee-dev/levee/internal/testkit"
)

// TestMain checks for leaked goroutines. The integration tests' clients
// keep background goroutines, so it is left out of their build.
func TestMain(m *testing.M) { testkit.VerifyMain(m) }
