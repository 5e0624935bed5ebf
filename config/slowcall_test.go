package config_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/config"
)

// TestSlowCallBesideWaitsLoads: a breaker counting slow calls in front of
// a rate limit that waits up to the threshold or longer was a load error
// (the breaker timed the wait for a token as part of the call, so a
// backlog tripped it). The breaker takes the waits of the layers inside
// it off a call's time now (TestSlowCallsBesideABacklog), so each of
// these loads.
func TestSlowCallBesideWaitsLoads(t *testing.T) {
	const slow = "    breaker: {slow_call: {threshold: 2s, ratio: 50%}}\n"
	for _, tt := range []struct{ name, yaml string }{
		{"no max_wait", "handlers:\n  h:\n" + slow + "    ratelimit: {rate: 5/s}\n"},
		{"max_wait above", "handlers:\n  h:\n" + slow + "    ratelimit: {rate: 5/s, max_wait: 5s}\n"},
		{"per-key only", "handlers:\n  h:\n" + slow + "    ratelimit: {key: {metadata: c}, per_key: {rate: 5/s}}\n"},
		{"shared breaker", "breakers:\n  b: {slow_call: {threshold: 2s, ratio: 50%}}\nhandlers:\n  h:\n    breaker: {shared: b}\n    ratelimit: {rate: 5/s}\n"},
		{"fleet limit", "fleet: {store: \"redis://127.0.0.1:1\"}\nhandlers:\n  h:\n" + slow + "    fleet: {ratelimit: {rate: 100/s}}\n"},
		{"priority", "schedulers:\n  s: {slots: 1}\nhandlers:\n  h:\n" + slow + "    priority: {scheduler: s}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := config.Parse("levee.yaml", []byte(tt.yaml), nil, nil); err != nil {
				t.Fatalf("got %v, want a valid file", err)
			}
		})
	}
}

// TestSlowCallsBesideABacklog: the canonical stack from YAML, a breaker
// with slow_call.threshold 2s (at least 10 calls) in front of a backlog
// of 40 messages that arrive at once and wait their turn for up to 8s: in
// a rate limit of 5/s without max_wait, behind a one-slot priority queue
// too, or in a batch that starts 3s after its first message. With a
// downstream that answers in 1 ms the breaker opened (a backlog of 40 at
// 5/s opened it: the waits were timed as slow calls; backpressure is not
// failure); it stays closed now and every message is handled. With a
// downstream that takes 3s a call it still opens.
func TestSlowCallsBesideABacklog(t *testing.T) {
	const head = "    dlq: {topic: h.dlq, max_hold: 1m}\n" +
		"    breaker: {slow_call: {threshold: 2s, ratio: 50%}, min_requests: 10, window: 1m}\n"
	for _, tc := range []struct{ name, yaml string }{
		{"ratelimit", "handlers:\n  h:\n" + head + "    ratelimit: {rate: 5/s}\n"},
		{"priority and ratelimit", "schedulers:\n  s: {slots: 1}\nhandlers:\n  h:\n" + head +
			"    priority: {scheduler: s}\n    ratelimit: {rate: 5/s}\n"},
		{"batch", "handlers:\n  h:\n" + head + "    batch: {max_wait: 3s, max_size: 100}\n"},
	} {
		for _, call := range []time.Duration{time.Millisecond, 3 * time.Second} {
			t.Run(tc.name+"/"+call.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					opened, calls, failed := backlog(t, tc.yaml, call)
					if call < 2*time.Second && (opened || calls != 40 || failed != 0) {
						t.Errorf("40 at once, %s calls: breaker opened %v, %d calls, %d failed; want never, 40, 0", call, opened, calls, failed)
					}
					if call > 2*time.Second && !opened {
						t.Errorf("40 at once, %s calls: the breaker never opened", call)
					}
				})
			})
		}
	}
}

// backlog sends 40 messages at once through handler h of y, whose
// downstream takes call (per message, or per batch), and says whether
// its breaker was ever open (sampled every 50ms, and at the end).
func backlog(t *testing.T, y string, call time.Duration) (opened bool, calls, failed int64) {
	cfg, err := config.Parse("levee.yaml", []byte(y), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := config.Build(cfg, config.Deps{Publisher: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var n atomic.Int64
	handler := func(*message.Message) ([]*message.Message, error) {
		n.Add(1)
		time.Sleep(call)
		return nil, nil
	}
	if _, ok := cfg.Handler("h").Batch(); ok {
		b, err := cfg.Batcher("h", func(_ context.Context, msgs []*message.Message) error {
			n.Add(int64(len(msgs)))
			time.Sleep(call)
			return nil
		}, config.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		handler = b.Handler
	}
	h := a.Stack("h").Middleware(handler)
	br, _ := a.Breaker("h")
	stop := make(chan struct{})
	var open atomic.Bool
	go func() {
		for {
			if br.State() != breaker.StateClosed {
				open.Store(true)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var fails atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if _, err := h(message.NewMessage("m", nil)); err != nil {
				fails.Add(1)
			}
		})
	}
	wg.Wait()
	close(stop)
	return open.Load() || br.State() != breaker.StateClosed, n.Load(), fails.Load()
}
