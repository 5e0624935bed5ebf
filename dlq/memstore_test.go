package dlq_test

import (
	"testing"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

func TestMemStoreConformance(t *testing.T) {
	dlqtest.Run(t, func(*testing.T) dlq.Store { return dlq.NewMemStore() })
}
