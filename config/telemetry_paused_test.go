package config_test

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// TestPausedCountsOnlyTheBreakersOwnWait pins what docs/TELEMETRY.md says
// of levee.breaker.paused: it counts messages waiting in the breaker. A
// breaker whose max hold (200 ms) is shorter than the dlq's (5 s) ends a
// message's wait with an *OpenError whose RetryAfter (the 800 ms left of
// the open period) the dlq then waits in process: during that wait the
// message is held because the breaker is open, but not counted as paused.
func TestPausedCountsOnlyTheBreakersOwnWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		y := "handlers:\n  h:\n    metrics: true\n    dlq: {topic: d, max_hold: 5s, retry: {max_attempts: 1}}\n    breaker: {consecutive_failures: 1, open_for: 1s, max_hold: 200ms}\n"
		a, reader := buildMetered(t, y)
		down := true
		h := a.Stack("h").Middleware(func(*message.Message) ([]*message.Message, error) {
			if down {
				return nil, errors.New("down")
			}
			return nil, nil
		})
		if _, err := h(message.NewMessage("trip", nil)); err != nil { // exhausted at once: dead-lettered, the breaker opens
			t.Fatal(err)
		}
		down = false
		var wg sync.WaitGroup
		var heldErr error
		wg.Go(func() { _, heldErr = h(message.NewMessage("held", nil)) })
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		inBreaker, _ := points(t, reader)
		time.Sleep(400 * time.Millisecond) // 0.5 s: in the dlq's wait for the RetryAfter
		synctest.Wait()
		inDLQ, _ := points(t, reader, "outcome")
		wg.Wait()
		_ = heldErr // its next call comes at the end of the open period: not what this test is about
		if got := inBreaker["levee.breaker.paused"]; got != 1 {
			t.Errorf("levee.breaker.paused while the message waits in the breaker: %d, want 1", got)
		}
		if got := inDLQ["levee.breaker.paused"]; got != 0 {
			t.Errorf("levee.breaker.paused while the dlq waits the breaker's RetryAfter: %d, want 0", got)
		}
		if got := inDLQ["levee.breaker.wait.duration max_hold"]; got != 1 {
			t.Errorf("levee.breaker.wait.duration{max_hold}: %d, want 1 (the breaker's own wait)", got)
		}
		if got := inDLQ["levee.dlq.deferrals"] + inDLQ["levee.handler.messages deferred"]; got != 0 {
			t.Errorf("a deferral counted while the dlq waits in process: %d", got)
		}
	})
}
