package middleware_test

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/middleware"
)

// trace returns a middleware that prints when it is entered and left.
func trace(name string) message.HandlerMiddleware {
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			fmt.Println("pre ", name)
			out, err := next(msg)
			fmt.Println("post", name)
			return out, err
		}
	}
}

// The Stack applies the canonical order whatever order the slots are set in.
func ExampleStack() {
	s := middleware.NewStack().
		Timeout(trace("timeout")).
		RateLimit(trace("ratelimit")).
		Recover(trace("recover")).
		Priority(trace("priority")).
		DLQ(trace("dlq")).
		Tracing(trace("tracing")).
		Breaker(trace("breaker")).
		Dedup(trace("dedup")).
		Metrics(trace("metrics"))

	h := s.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		fmt.Println("handler", string(msg.Payload))
		return nil, nil
	})
	_, _ = h(message.NewMessage("1", []byte("order-1")))
	// Output:
	// pre  tracing
	// pre  metrics
	// pre  recover
	// pre  dlq
	// pre  dedup
	// pre  breaker
	// pre  priority
	// pre  ratelimit
	// pre  timeout
	// handler order-1
	// post timeout
	// post ratelimit
	// post priority
	// post breaker
	// post dedup
	// post dlq
	// post recover
	// post metrics
	// post tracing
}

// Recover turns a panic into an error that carries the value and stack.
func ExampleRecover() {
	h := middleware.Recover(func(msg *message.Message) ([]*message.Message, error) {
		panic("boom")
	})
	_, err := h(message.NewMessage("1", nil))
	fmt.Println(err, levee.IsPanic(err))
	// Output: levee: panic: boom true
}
