package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// stallStore is a DLQ store whose writes hang while a store_stall fault
// is active: what a store that stops answering does. A write made during
// the stall waits until the stall ends (then goes through, late) or its
// deadline passes (then fails: the monitor Nacks the dead letter).
type stallStore struct {
	dlqops.Store
	// stalledUntil returns when the active stall ends (zero: none).
	stalledUntil func() time.Time
}

func (s stallStore) Add(ctx context.Context, letters ...dlqops.Record) (int, error) {
	if until := s.stalledUntil(); !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("levee/chaos: store stalled (injected): %w", ctx.Err())
		}
	}
	return s.Store.Add(ctx, letters...)
}
