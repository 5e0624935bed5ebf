package dlqops_test

import (
	"testing"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

func TestMemStoreConformance(t *testing.T) {
	dlqtest.Run(t, func(*testing.T) dlqops.Store { return dlqops.NewMemStore() })
}
