package middleware_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// TestHoldIsSharedByTheStack: the max hold bounds a delivery's waits in
// every concern together, not each concern's own. A message waits 500ms
// in the open breaker and then needs 900ms more in the priority queue (its
// only slot busy until 1.4s) or in the rate limit (its next token at
// 1.4s). Each wait alone fits the 1s max hold; together they would hold
// the message 1.4s, past the hold and so past the transport's ack
// deadline, which would redeliver it while it is still held. The second
// concern takes only what is left of the hold, 500ms, and defers the
// message: it is Nacked within the max hold, never dead-lettered.
func TestHoldIsSharedByTheStack(t *testing.T) {
	const maxHold = time.Second
	for _, second := range []string{"priority", "ratelimit"} {
		t.Run(second, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				br, err := breaker.New(breaker.WithConsecutiveFailures(5), breaker.WithMaxHold(maxHold))
				if err != nil {
					t.Fatal(err)
				}
				defer br.Close()
				d, err := dlq.New(&capture{}, dlq.WithTopic("t.dlq"), dlq.WithMaxHold(maxHold))
				if err != nil {
					t.Fatal(err)
				}
				s := middleware.NewStack().DLQ(d.Middleware).Breaker(br.Middleware)
				// Something else takes the second concern's capacity at
				// 400ms, for 1s.
				var busy func()
				switch second {
				case "priority":
					sch, err := priority.NewScheduler(priority.WithSlots(1), priority.WithMaxHold(maxHold))
					if err != nil {
						t.Fatal(err)
					}
					defer sch.Close()
					s.Priority(sch.Middleware)
					busy = func() {
						if err := sch.Acquire(context.Background(), 0); err != nil {
							t.Error(err)
							return
						}
						time.AfterFunc(time.Second, sch.Release)
					}
				case "ratelimit":
					lim, err := ratelimit.New(ratelimit.WithRate(1), ratelimit.WithBurst(1), ratelimit.WithMaxHold(maxHold))
					if err != nil {
						t.Fatal(err)
					}
					defer lim.Close()
					s.RateLimit(lim.Middleware)
					busy = func() {
						if err := lim.Wait(context.Background()); err != nil {
							t.Error(err)
						}
					}
				}
				calls := 0
				h := s.Middleware(func(*message.Message) ([]*message.Message, error) {
					calls++
					return nil, nil
				})
				br.ForceOpen()
				time.AfterFunc(400*time.Millisecond, busy)
				time.AfterFunc(500*time.Millisecond, br.ClearForce)

				start := time.Now()
				msg := message.NewMessage("m-1", nil)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				msg.SetContext(ctx)
				_, err = h(msg)
				held := time.Since(start)
				if held > maxHold {
					t.Errorf("held %s in all, past the max hold %s", held, maxHold)
				}
				if !levee.IsDeferral(err) {
					t.Errorf("got %v, want a deferral (the hold was spent)", err)
				}
				if calls != 0 {
					t.Errorf("handler ran %d times, want 0", calls)
				}
				t.Logf("held %s: %v", held, err)
			})
		})
	}
}
