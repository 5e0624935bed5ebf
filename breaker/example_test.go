package breaker_test

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
)

func Example() {
	b, err := breaker.New(
		breaker.WithConsecutiveFailures(2),
		breaker.WithOnStateChange(func(from, to breaker.State) { fmt.Println("breaker:", from, "->", to) }),
	)
	if err != nil {
		panic(err)
	}
	defer b.Close()

	down := true
	handler := b.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		if down {
			return nil, errors.New("payment provider unavailable")
		}
		return nil, nil
	})
	for range 2 {
		_, err := handler(message.NewMessage(watermill.NewUUID(), nil))
		fmt.Println("handler:", err)
	}
	fmt.Println("state:", b.State())

	// The operator's kill switch: let everything through, uncounted.
	down = false
	b.ForceClosed()
	_, err = handler(message.NewMessage(watermill.NewUUID(), nil))
	fmt.Println("forced closed:", err, b.State())

	// Output:
	// handler: payment provider unavailable
	// breaker: closed -> open
	// handler: payment provider unavailable
	// state: open
	// breaker: open -> closed
	// forced closed: <nil> closed
}

func ExampleConfig() {
	c := breaker.Config{FailureRatio: 1.5}
	fmt.Println(c.Validate())
	_, err := breaker.New(c.Options()...)
	fmt.Println(errors.Is(err, breaker.ErrInvalidConfig))
	// Output:
	// failure_ratio: must be between 0 (off) and 1, got 1.5
	// true
}
