package ratelimit

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/testkit"
)

// TestAdaptiveQuietWindowCutsByDecrease: a window stays open until it has
// min_samples, so after a quiet period (one message every 10 s overnight)
// it spans minutes, and the goodput it measures is the demand, not what
// the downstream can deliver. Judged congested (its calls a little above
// target_latency), it cut the rate to that goodput (0.1/s), that is to
// Min, and a busy morning started from there. A window that was held open
// for samples now cuts by Decrease only.
func TestAdaptiveQuietWindowCutsByDecrease(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		l := mustNew(t, WithRate(800), WithAdaptive(Adaptive{Min: 50, Max: 1500, TargetLatency: 50 * time.Millisecond}))
		h := l.Middleware(func(*message.Message) ([]*message.Message, error) {
			time.Sleep(60 * time.Millisecond)
			return nil, nil
		})
		for range DefaultMinSamples {
			time.Sleep(10 * time.Second)
			_, _ = h(message.NewMessage("m", nil))
		}
		if got, want := l.Rate(), 800*DefaultDecrease; got != want {
			t.Errorf("after a quiet, slow window: rate %v, want %v (one cut by decrease)", got, want)
		}
	})
}
