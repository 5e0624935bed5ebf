package middleware_test

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// Every concern in one Stack, as the README shows it, called directly: the
// first call fails and is retried by the dlq slot, the second succeeds; a
// duplicate delivery of the same message is acked without a call.
func ExampleStack_allConcerns() {
	pub := gochannel.NewGoChannel(gochannel.Config{}, nil)
	defer pub.Close()

	d := must(dlq.New(pub, dlq.WithBackoff(dlq.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2, MaxAttempts: 5})))
	b := must(breaker.New(breaker.WithConsecutiveFailures(5), breaker.WithDrain(30*time.Second, 0.1, 1)))
	defer b.Close()
	l := must(ratelimit.New(ratelimit.WithRate(200), ratelimit.WithBurst(20)))
	defer l.Close()
	s := must(priority.NewScheduler(priority.WithSlots(8)))
	defer s.Close()
	to := must(middleware.NewTimeout(2 * time.Second))
	dd := must(dedup.New(dedup.WithLease(time.Minute)))

	stack := middleware.NewStack().
		Timeout(to.Middleware).
		RateLimit(l.Middleware).
		Priority(s.Middleware).
		Breaker(b.Middleware).
		DLQ(d.Middleware).
		Dedup(dd.Middleware).
		Recover(middleware.Recover)

	calls := 0
	h := stack.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		calls++
		if calls == 1 {
			return nil, fmt.Errorf("gateway timeout")
		}
		return nil, nil
	})
	_, err := h(message.NewMessage("order-1", []byte(`{}`)))
	fmt.Println("err:", err, "calls:", calls)
	_, err = h(message.NewMessage("order-1", []byte(`{}`)))
	fmt.Println("duplicate err:", err, "calls:", calls)
	// Output:
	// err: <nil> calls: 2
	// duplicate err: <nil> calls: 2
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
