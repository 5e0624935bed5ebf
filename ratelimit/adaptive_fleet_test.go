package ratelimit

import (
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestAdaptiveUnderAFleetLimit: an adaptive limit with a fleet limit
// (WithFleet) is this replica's own: while the fleet's limit (100/s) holds
// messages back, the adaptive one (200/s) is not the bottleneck and does
// not rise, however healthy the downstream, so it cannot drift to Max
// and over-admit once the fleet's share grows.
func TestAdaptiveUnderAFleetLimit(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithRate(200), WithAdaptive(Adaptive{Min: 10, Max: 1000, TargetLatency: 50 * time.Millisecond}),
			WithFleet(Fleet{Store: fleet.NewMemStore(), Key: "k", Rate: 100}))
		h := l.Middleware(func(*message.Message) ([]*message.Message, error) {
			time.Sleep(time.Millisecond)
			return nil, nil
		})
		stop := time.Now().Add(10 * time.Second)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					_, _ = h(message.NewMessage("m", nil))
				}
			})
		}
		wg.Wait()
		if got := l.Rate(); got != 200 {
			t.Errorf("after 10s held back by the fleet's 100/s: adaptive rate %v, want 200 (not the bottleneck, not raised)", got)
		}
	})
}
