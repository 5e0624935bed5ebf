package middleware_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// slowCallLayer is what sits inside a slow-call breaker and makes a
// backlog wait: it wraps (or, for a batcher, is) the handler, whose
// downstream takes call per message (per batch).
type slowCallLayer struct {
	name  string
	build func(t *testing.T, s *middleware.Stack, call time.Duration) message.HandlerFunc
}

var slowCallLayers = []slowCallLayer{
	{"ratelimit", func(t *testing.T, s *middleware.Stack, call time.Duration) message.HandlerFunc {
		// 5/s: the 40th message waits 8s for its token
		lim, err := ratelimit.New(ratelimit.WithRate(5), ratelimit.WithBurst(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lim.Close() })
		s.RateLimit(lim.Middleware)
		return sleeper(call)
	}},
	{"ratelimit per key", func(t *testing.T, s *middleware.Stack, call time.Duration) message.HandlerFunc {
		// every message has the same key (none): 5/s for it
		lim, err := ratelimit.New(ratelimit.WithKeyMetadata("tenant"), ratelimit.WithPerKey(5, 1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lim.Close() })
		s.RateLimit(lim.Middleware)
		return sleeper(call)
	}},
	{"fleet ratelimit", func(t *testing.T, s *middleware.Stack, call time.Duration) message.HandlerFunc {
		// the fleet's 5/s, its key's 5/s (every message has the same key)
		lim, err := ratelimit.New(ratelimit.WithFleet(ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "k",
			Rate: 5, PerKeyRate: 5, PerKeyMetadata: "tenant"}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lim.Close() })
		s.RateLimit(lim.Middleware)
		return sleeper(call)
	}},
	{"fleet breaker", func(t *testing.T, s *middleware.Stack, call time.Duration) message.HandlerFunc {
		// a fleet breaker further in is forced open for 5s
		fb, err := breaker.NewFleet(breaker.Fleet{Store: fleet.NewMemStore(), Key: "k", Member: "a", MaxHold: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = fb.Close() })
		if err := fb.SetForce(context.Background(), breaker.ForceOpen); err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		time.AfterFunc(5*time.Second, func() { _ = fb.SetForce(context.Background(), breaker.ForceNone) })
		s.Priority(fb.Middleware)
		return sleeper(call)
	}},
	{"limiter in the handler", func(t *testing.T, _ *middleware.Stack, call time.Duration) message.HandlerFunc {
		// the handler waits for a token itself (Wait with the message's
		// context): a rate-limit wait wherever it is
		lim, err := ratelimit.New(ratelimit.WithRate(5), ratelimit.WithBurst(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lim.Close() })
		return func(msg *message.Message) ([]*message.Message, error) {
			if err := lim.Wait(msg.Context()); err != nil {
				return nil, err
			}
			time.Sleep(call)
			return nil, nil
		}
	}},
	{"priority", func(t *testing.T, s *middleware.Stack, call time.Duration) message.HandlerFunc {
		// one slot: with 100ms calls the 40th message waits 3.9s for it
		sch, err := priority.NewScheduler(priority.WithSlots(1), priority.WithMaxWait(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sch.Close() })
		s.Priority(sch.Middleware)
		return sleeper(call)
	}},
	{"inner breaker", func(t *testing.T, s *middleware.Stack, call time.Duration) message.HandlerFunc {
		// a breaker further in (another team's, say) is open for 5s
		inner, err := breaker.New(breaker.WithConsecutiveFailures(5))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = inner.Close() })
		inner.ForceOpen()
		time.AfterFunc(5*time.Second, inner.ClearForce)
		s.Priority(inner.Middleware)
		return sleeper(call)
	}},
	{"batch", func(t *testing.T, s *middleware.Stack, call time.Duration) message.HandlerFunc {
		// the batch starts 3s after its first message (max_wait)
		b, err := batch.New(func(context.Context, []*message.Message) error {
			time.Sleep(call)
			return nil
		}, batch.WithMaxSize(100), batch.WithMaxWait(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b.Handler
	}},
}

func sleeper(d time.Duration) message.HandlerFunc {
	return func(*message.Message) ([]*message.Message, error) {
		time.Sleep(d)
		return nil, nil
	}
}

// runSlowCall sends n messages at once through a breaker counting calls
// over 2s as slow (ratio 50% of at least 10 in a minute) in front of the
// layer, and
// returns how often the breaker opened and how many messages failed.
func runSlowCall(t *testing.T, l slowCallLayer, n int, call time.Duration) (opened, failed int64) {
	var opens atomic.Int64
	br, err := breaker.New(breaker.WithSlowCall(2*time.Second, 0.5), breaker.WithFailureRatio(0, 10),
		breaker.WithConsecutiveFailures(0), breaker.WithMaxHold(time.Minute), breaker.WithWindow(time.Minute),
		breaker.WithOnStateChange(func(_, to breaker.State) {
			if to == breaker.StateOpen {
				opens.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Close() })
	s := middleware.NewStack().Breaker(br.Middleware)
	h := s.Middleware(l.build(t, s, call))
	var fails atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			msg := message.NewMessage("m", nil)
			msg.SetContext(context.Background())
			if _, err := h(msg); err != nil {
				fails.Add(1)
			}
		})
	}
	wg.Wait()
	return opens.Load(), fails.Load()
}

// TestSlowCallIsNotBackpressure: a breaker that counts slow calls judges
// the downstream, not the waits of the layers inside its slot. 40
// messages arrive at once in front of a fast downstream (1ms a call; 100ms
// behind a one-slot priority queue) and wait their turn well past the 2s
// threshold: in the rate limiter (5/s), the priority queue, an inner
// breaker that is open for 5s, or for their batch to start (max_wait 3s).
// The breaker timed those waits as calls, counted the backlog as slow
// calls and opened with the downstream healthy (backpressure is not
// failure); it takes the waits off now and stays closed.
func TestSlowCallIsNotBackpressure(t *testing.T) {
	for _, l := range slowCallLayers {
		t.Run(l.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				call := time.Millisecond
				if l.name == "priority" {
					call = 100 * time.Millisecond
				}
				opened, failed := runSlowCall(t, l, 40, call)
				if opened != 0 || failed != 0 {
					t.Errorf("fast downstream behind a backlog: breaker opened %d times, %d of 40 messages failed; want 0, 0", opened, failed)
				}
			})
		})
	}
}

// TestSlowCallStillSeesASlowDownstream: the same stacks with a downstream
// that takes 3s a call (a batch), over the 2s threshold: the breaker
// still counts the calls as slow and opens.
func TestSlowCallStillSeesASlowDownstream(t *testing.T) {
	for _, l := range slowCallLayers {
		t.Run(l.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				opened, _ := runSlowCall(t, l, 10, 3*time.Second)
				if opened == 0 {
					t.Error("downstream over the threshold: the breaker never opened")
				}
			})
		})
	}
}
