package chaos

import (
	"context"
	"fmt"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// stallStore is a DLQ store whose writes block until their deadline while
// a store_stall fault is active: what a store that stops answering does.
type stallStore struct {
	dlqops.Store
	stalled func() bool
}

func (s stallStore) Add(ctx context.Context, letters ...dlqops.Record) (int, error) {
	if s.stalled() {
		<-ctx.Done()
		return 0, fmt.Errorf("levee/chaos: store stalled (injected): %w", ctx.Err())
	}
	return s.Store.Add(ctx, letters...)
}
