package config_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/config"
)

// TestAdaptiveTargetBelowBatchWaitPinsMin shows what the load check on
// ratelimit.adaptive.target_latency prevents: built in code (where nothing
// links the two settings), an adaptive limit whose target (50ms) is not
// above the batch's max_wait (100ms) reads the wait in the batch as the
// downstream's latency. With a healthy downstream (5ms a batch) and
// plenty of demand it cuts the rate, batches fill slower, each message
// waits longer, and the rate stays at adaptive.min.
func TestAdaptiveTargetBelowBatchWaitPinsMin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		y := "handlers:\n  h:\n    ratelimit: {rate: 50/s, adaptive: {min: 10/s, max: 1000/s, target_latency: 50ms}}\n    batch: {max_size: 10, max_wait: 10ms}\n"
		cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := cfg.Batcher("h", func(context.Context, []*message.Message) error { time.Sleep(5 * time.Millisecond); return nil },
			config.Deps{}, batch.WithMaxWait(100*time.Millisecond)) // the application's own option
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		a, err := config.Build(cfg, config.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		h := a.Stack("h").Middleware(b.Handler)
		l, _ := a.Limiter("h")
		stop := time.Now().Add(20 * time.Second)
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					_, _ = h(message.NewMessage("m", nil))
				}
			})
		}
		wg.Wait()
		if got := l.Rate(); got != 10 {
			t.Errorf("after 20s of demand with a healthy downstream: rate %v, want it pinned at adaptive.min (10)", got)
		}
	})
}
