package config_test

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/config"
)

// TestRateLimitWaitAndSlowCalls: a breaker counting slow calls times
// everything inside its slot, the wait for a rate-limit token included.
// A handler with slow_call.threshold 2s and `ratelimit: {rate: 5/s}`
// loaded, and 40 messages arriving at once in front of a downstream
// answering in 1 ms opened the breaker: the backlog's waits were slow
// calls. Backpressure is not failure: a ratelimit section that waits
// (mode wait) up to the threshold or longer (max_wait, max_hold, or
// neither: up to the transport's hold) is a load error now.
func TestRateLimitWaitAndSlowCalls(t *testing.T) {
	const slow = "    breaker: {slow_call: {threshold: 2s, ratio: 50%}}\n"
	tests := []struct {
		name, yaml string
		want       string // substring of the error; "": valid
	}{
		{"no max_wait", "handlers:\n  h:\n" + slow + "    ratelimit: {rate: 5/s}\n",
			"levee.yaml:3: handlers.h.breaker.slow_call.threshold: 2s is not longer than the longest wait for a rate-limit token (no max_wait"},
		{"max_wait equal", "handlers:\n  h:\n" + slow + "    ratelimit: {rate: 5/s, max_wait: 2s}\n",
			"handlers.h.breaker.slow_call.threshold: 2s is not longer than the longest wait for a rate-limit token (2s)"},
		{"max_hold above", "handlers:\n  h:\n" + slow + "    ratelimit: {rate: 5/s, max_hold: 3s}\n",
			"(3s)"},
		{"per-key only", "handlers:\n  h:\n" + slow + "    ratelimit: {key: {metadata: c}, per_key: {rate: 5/s}}\n",
			"handlers.h.breaker.slow_call.threshold"},
		{"shared breaker", "breakers:\n  b: {slow_call: {threshold: 2s, ratio: 50%}}\nhandlers:\n  h:\n    breaker: {shared: b}\n    ratelimit: {rate: 5/s}\n",
			"levee.yaml:5: handlers.h.breaker: the shared breaker b's slow_call.threshold 2s is not longer"},
		{"fleet limit", "fleet: {store: \"redis://127.0.0.1:1\"}\nhandlers:\n  h:\n" + slow + "    fleet: {ratelimit: {rate: 100/s}}\n",
			"handlers.h.breaker.slow_call.threshold: 2s is not longer than the longest wait for a rate-limit token (no max_wait"},
		{"fleet limit, max_wait below", "fleet: {store: \"redis://127.0.0.1:1\"}\nhandlers:\n  h:\n" + slow + "    fleet: {ratelimit: {rate: 100/s}}\n    ratelimit: {max_wait: 1s}\n", ""},
		{"fleet limit of its own and a local one, 2 x max_wait", "fleet: {store: \"redis://127.0.0.1:1\"}\nhandlers:\n  h:\n" + slow + "    fleet: {ratelimit: {rate: 100/s, local_rate: 50/s}}\n    ratelimit: {rate: 10/s, max_wait: 1s}\n",
			"(2s)"},
		{"max_wait below", "handlers:\n  h:\n" + slow + "    ratelimit: {rate: 5/s, max_wait: 1s}\n", ""},
		{"max_hold below", "handlers:\n  h:\n" + slow + "    ratelimit: {rate: 5/s, max_wait: 5s, max_hold: 1s}\n", ""},
		{"reject mode", "handlers:\n  h:\n" + slow + "    ratelimit: {rate: 5/s, mode: reject}\n", ""},
		{"no limit", "handlers:\n  h:\n" + slow + "    ratelimit: {burst: 5}\n", ""},
		{"no slow calls", "handlers:\n  h:\n    breaker: {consecutive_failures: 5}\n    ratelimit: {rate: 5/s}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("levee.yaml", []byte(tt.yaml), nil, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want a valid file", err)
				}
				return
			}
			if !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error wrapping ErrInvalidConfig containing %q", err, tt.want)
			}
		})
	}
}

// TestRateLimitMaxWaitKeepsBacklogOffTheBreaker: the remedy the error
// gives. With max_wait 1s under the 2s threshold, a longer wait is
// deferred, the dlq (outside the breaker) waits it, and the 40 messages
// that arrive at once pass at 5/s with the breaker closed.
func TestRateLimitMaxWaitKeepsBacklogOffTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const y = `
handlers:
  h:
    dlq: {topic: h.dlq, max_hold: 20s}
    breaker: {slow_call: {threshold: 2s, ratio: 50%}, min_requests: 10}
    ratelimit: {rate: 5/s, max_wait: 1s}
`
		cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := config.Build(cfg, config.Deps{Publisher: discard{}})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		var calls, failed atomic.Int64
		h := a.Stack("h").Middleware(func(*message.Message) ([]*message.Message, error) {
			calls.Add(1)
			time.Sleep(time.Millisecond)
			return nil, nil
		})
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				if _, err := h(message.NewMessage("m", nil)); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		b, _ := a.Breaker("h")
		if calls.Load() != 40 || failed.Load() != 0 || b.State() != breaker.StateClosed {
			t.Errorf("40 messages at once: %d calls, %d failed, breaker %v; want 40, 0, closed", calls.Load(), failed.Load(), b.State())
		}
	})
}
