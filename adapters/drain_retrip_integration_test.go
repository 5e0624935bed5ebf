//go:build integration

package adapters_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/config"
)

// TestDrainRetripOverBrokers: a breaker from a levee.yaml (its drain in
// the ratelimit slot) recovers, drains a backlog slowly, and trips again
// during the drain, on every transport. The messages waiting for the
// drain's tokens at the trip are not run on the downstream that just
// failed: the only failed handler call of the second outage is the one
// that tripped the breaker; every message is processed in the end.
// Before, the trip let every waiting message go at once: up to the
// consumer's concurrency of failed calls, each a failed attempt.
func TestDrainRetripOverBrokers(t *testing.T) {
	cases := transportCases(t)
	runConcurrently(t, caseNames(cases), func(t *testing.T, i int) { drainRetrip(t, cases[i]) })
}

func drainRetrip(t *testing.T, tc transportCase) {
	const total = 40
	conc := scenarioConcurrency(tc)
	tr := scenarioTransport(t, tc, conc)
	topic := scenarioTopic("drainretrip")
	maxHold := 3 * time.Second
	if dl := tr.Capabilities.AckDeadline; dl > 0 && dl/2 < maxHold {
		maxHold = dl / 2
	}
	y := fmt.Sprintf("handlers:\n  h:\n    breaker: {consecutive_failures: 1, open_for: 1s, max_hold: %s, drain: {window: 10s, start: 10%%, rate: 20/s}}\n", maxHold)
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	require.NoError(t, err)
	var mu sync.Mutex
	var trips []time.Time
	applied, err := config.Build(cfg, config.Deps{OnBreakerStateChange: func(_ string, _, to breaker.State) {
		if to == breaker.StateOpen {
			mu.Lock()
			trips = append(trips, time.Now())
			mu.Unlock()
		}
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = applied.Close() })

	var down atomic.Bool
	var failed2 atomic.Int64 // failed calls in the second outage
	var second atomic.Bool
	processed := newScenarioSet()
	h := applied.Stack("h").Middleware(func(m *message.Message) ([]*message.Message, error) {
		time.Sleep(2 * time.Millisecond)
		if down.Load() {
			if second.Load() {
				failed2.Add(1)
			}
			return nil, errors.New("downstream unavailable")
		}
		processed.add(m.UUID, nil)
		return nil, nil
	})
	router := scenarioRouter(t)
	router.AddMiddleware(tr.Middleware)
	router.AddConsumerHandler("h", topic, tr.Subscriber, scenarioConsumer(h))
	scenarioRun(t, router)

	down.Store(true)
	for i := range total {
		require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), scenarioPayload(i))))
	}
	scenarioWait(t, "the first trip", func() bool { mu.Lock(); defer mu.Unlock(); return len(trips) == 1 })
	down.Store(false)
	// The probe after open_for closes the breaker; the drain admits 2/s
	// at first, so the in-flight messages queue for its tokens.
	scenarioWait(t, "the first messages after the recovery", func() bool { return processed.len() >= 2 })
	second.Store(true)
	down.Store(true)
	scenarioWait(t, "the trip during the drain", func() bool { mu.Lock(); defer mu.Unlock(); return len(trips) == 2 })
	time.Sleep(100 * time.Millisecond)
	down.Store(false)
	scenarioWait(t, "every message processed", func() bool { return processed.len() == total })
	t.Logf("%s: %d failed calls in the outage during the drain", tc.name, failed2.Load())
	require.Equal(t, int64(1), failed2.Load(), "failed handler calls in the outage during the drain, want only the one that tripped the breaker")
}
