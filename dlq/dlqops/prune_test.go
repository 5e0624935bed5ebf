package dlqops_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/testkit"
)

func TestPrunerRun(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := dlqops.NewMemStore()
		start := time.Now()
		m, err := dlqops.NewMonitor(s)
		if err != nil {
			t.Fatal(err)
		}
		for i, age := range []time.Duration{3 * time.Hour, 90 * time.Minute, 30 * time.Minute} {
			_ = m.Record(context.Background(), "orders.dlq", opsDeadLetterMsg(itoa(i), "orders", opsFP, 0, start.Add(-age)))
		}
		p, err := dlqops.NewPruner(s, dlqops.Retention{MaxAge: 2 * time.Hour}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		synctest.Wait()
		if got := s.Len(); got != 2 {
			t.Errorf("after the first prune: %d letters want 2", got)
		}
		testkit.Advance(time.Hour) // the 90-minute letter is 2.5h old now
		if got := s.Len(); got != 1 {
			t.Errorf("after one interval: %d letters want 1", got)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	})
}

func TestNewPrunerInvalid(t *testing.T) {
	s := dlqops.NewMemStore()
	for name, c := range map[string]struct {
		s     dlqops.Store
		r     dlqops.Retention
		every time.Duration
	}{
		"nil store":      {nil, dlqops.Retention{MaxCount: 1}, time.Hour},
		"bounds nothing": {s, dlqops.Retention{}, time.Hour},
		"negative":       {s, dlqops.Retention{MaxAge: -1}, time.Hour},
		"zero interval":  {s, dlqops.Retention{MaxCount: 1}, 0},
	} {
		if _, err := dlqops.NewPruner(c.s, c.r, c.every); !errors.Is(err, dlqops.ErrInvalidConfig) {
			t.Errorf("%s: got %v want ErrInvalidConfig", name, err)
		}
	}
}
