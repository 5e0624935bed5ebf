package config_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/config"
)

// TestBatchCombinations: a handler's batch section with a timeout that is
// not longer than the batch's max_wait loaded, and built a handler that
// went wrong on a quiet service: a message alone in its batch left it
// when its attempt timed out, before the batch flushed, and was
// redelivered without end (a deferral, never written, never
// dead-lettered). It is a load error naming the key and the line. A
// slow-call threshold not longer than max_wait was one too (every message
// took max_wait, a slow call); the breaker takes the wait for the batch
// off a call's time now, so it loads.
func TestBatchCombinations(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error; none: valid
	}{
		{"timeout below max_wait", "handlers:\n  h:\n    timeout: 10ms\n    batch: {max_wait: 50ms}\n",
			[]string{"levee.yaml:3: handlers.h.timeout: 10ms is not longer than the batch's max_wait (50ms)"}},
		{"timeout equal to the default max_wait", "handlers:\n  h:\n    timeout: 50ms\n    batch: {max_size: 10}\n",
			[]string{"levee.yaml:3: handlers.h.timeout: 50ms is not longer than the batch's max_wait (50ms)"}},
		// a slow-call breaker takes the wait for the batch off a call's time
		// (TestSlowCallsBesideABacklog): no longer a load error
		{"slow call below max_wait", "handlers:\n  h:\n    breaker: {slow_call: {threshold: 20ms, ratio: 50%}}\n    batch: {max_wait: 50ms}\n", nil},
		{"shared breaker's slow call", "breakers:\n  b: {slow_call: {threshold: 20ms, ratio: 50%}}\nhandlers:\n  h:\n    breaker: {shared: b}\n    batch: {max_wait: 50ms}\n", nil},
		{"timeout and slow call", "handlers:\n  h:\n    timeout: 10ms\n    breaker: {slow_call: {threshold: 20ms, ratio: 50%}}\n    batch: {max_wait: 50ms}\n",
			[]string{"handlers.h.timeout: 10ms"}},
		{"longer timeout and threshold", "handlers:\n  h:\n    timeout: 1s\n    breaker: {slow_call: {threshold: 500ms, ratio: 50%}}\n    batch: {max_wait: 50ms}\n", nil},
		{"adaptive target_latency below max_wait", "handlers:\n  h:\n    ratelimit: {adaptive: {min: 10/s, max: 100/s, target_latency: 50ms}}\n    batch: {max_wait: 100ms}\n",
			[]string{"levee.yaml:3: handlers.h.ratelimit.adaptive.target_latency: 50ms is not longer than the batch's max_wait (100ms)"}},
		{"adaptive automatic target", "handlers:\n  h:\n    ratelimit: {adaptive: {min: 10/s, max: 100/s}}\n    batch: {max_wait: 100ms}\n", nil},
		{"adaptive target above max_wait", "handlers:\n  h:\n    ratelimit: {adaptive: {min: 10/s, max: 100/s, target_latency: 500ms}}\n    batch: {max_wait: 100ms}\n", nil},
		{"no batch section", "handlers:\n  h:\n    timeout: 10ms\n    breaker: {slow_call: {threshold: 20ms, ratio: 50%}}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("levee.yaml", []byte(tt.yaml), nil, nil)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want a valid file", err)
				}
				return
			}
			if !errors.Is(err, config.ErrInvalidConfig) {
				t.Fatalf("got %v, want an error wrapping ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestTimeoutBelowMaxWaitNeverWrites shows what the check prevents: built
// in code (where nothing links the two settings), a 10ms timeout in front
// of a batch lingering 50ms gives a message alone a deferral on every
// delivery, and the batch func never runs.
func TestTimeoutBelowMaxWaitNeverWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  h:\n    timeout: 1s\n    dlq: {topic: d}\n    batch: {max_wait: 50ms}\n"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		b, err := cfg.Batcher("h", func(context.Context, []*message.Message) error { calls++; return nil }, config.Deps{},
			batch.WithMaxWait(2*time.Second)) // the application's own option, longer than the timeout
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		a, err := config.Build(cfg, config.Deps{Publisher: discard{}})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		h := a.Stack("h").Middleware(b.Handler)
		for i := range 3 {
			_, err := h(message.NewMessage("m", nil))
			var left *batch.LeftError
			if !errors.As(err, &left) {
				t.Fatalf("delivery %d: got %v, want a *batch.LeftError (a deferral)", i, err)
			}
		}
		if calls != 0 {
			t.Fatalf("batch func ran %d times, want never", calls)
		}
	})
}

// TestBatchPriorityWarning: a message holds its priority slot while it
// waits in its batch, so a batch never holds more messages than the
// scheduler has slots (probed: slots 2, max_size 10, ten messages in
// flight gave five batches of two, each after max_wait). The file loads
// (it is valid) and Warnings says so.
func TestBatchPriorityWarning(t *testing.T) {
	tests := []struct {
		name, yaml, want string // want "": no warning
	}{
		{"fewer slots than max_size", "schedulers:\n  s: {slots: 2}\nhandlers:\n  h:\n    priority: {scheduler: s}\n    batch: {max_size: 10}\n",
			"levee.yaml:5: handlers.h.priority: scheduler s has 2 slots and the batch's max_size is 10"},
		{"default slots, default max_size", "schedulers:\n  s: {}\nhandlers:\n  h:\n    priority: {scheduler: s}\n    batch: {}\n",
			"scheduler s has 8 slots and the batch's max_size is 100"},
		{"enough slots", "schedulers:\n  s: {slots: 16}\nhandlers:\n  h:\n    priority: {scheduler: s}\n    batch: {max_size: 16}\n", ""},
		{"no batch", "schedulers:\n  s: {slots: 2}\nhandlers:\n  h:\n    priority: {scheduler: s}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("levee.yaml", []byte(tt.yaml), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings(config.Deps{}) {
				if strings.Contains(w, "slots") {
					got = append(got, w)
				}
			}
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("got %q, want no warning", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("got %q, want one warning containing %q", got, tt.want)
			}
		})
	}
}

// TestBatchBreakerCountsPerMessage pins what docs/BREAKER.md ("A batch
// handler") says: each message of a batch is one breaker call, so a
// result naming one of five messages counts one failure (its neighbours
// count as successes and are not retried), and an error for the whole
// batch counts five, tripping consecutive_failures: 5 with one call.
func TestBatchBreakerCountsPerMessage(t *testing.T) {
	tests := []struct {
		name     string
		ret      func(msgs []*message.Message) error
		failures uint32 // counted while closed (an open breaker resets its counts)
		wantOpen bool
	}{
		{"one of five fails", func(msgs []*message.Message) error {
			return (&batch.Errors{}).Fail(2, errors.New("row rejected"))
		}, 1, false},
		{"the whole batch fails", func([]*message.Message) error { return errors.New("database down") }, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  h:\n    dlq: {topic: d, retry: {max_attempts: 1}}\n"+
					"    breaker: {consecutive_failures: 5}\n    batch: {max_size: 5, max_wait: 10ms}\n"), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				deps := config.Deps{Publisher: discard{}}
				a, err := config.Build(cfg, deps)
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				calls := 0
				b, err := cfg.Batcher("h", func(_ context.Context, msgs []*message.Message) error {
					calls++
					return tt.ret(msgs)
				}, deps)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				h := a.Stack("h").Middleware(b.Handler)
				br, _ := a.Breaker("h")
				var wg sync.WaitGroup
				for i := range 5 {
					wg.Go(func() { _, _ = h(message.NewMessage(fmt.Sprint(i), nil)) })
				}
				wg.Wait()
				c, open := br.Counts(), br.State() == breaker.StateOpen
				if open != tt.wantOpen || c.TotalFailures != tt.failures {
					t.Errorf("breaker: open %v with %d failures; want open %v with %d", open, c.TotalFailures, tt.wantOpen, tt.failures)
				}
				if calls != 1 {
					t.Errorf("batch func calls: got %d, want 1 (one batch; max_attempts 1: no retry)", calls)
				}
			})
		})
	}
}
