package ratelimit_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/ratelimit"
)

func Example() {
	// Reject mode: 2 messages fit in the burst, the third is Nacked with a
	// suggested redelivery delay.
	l, err := ratelimit.New(ratelimit.WithRate(10), ratelimit.WithBurst(2), ratelimit.WithMode(ratelimit.ModeReject))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	h := l.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		fmt.Println("handled", msg.UUID)
		return nil, nil
	})
	for _, id := range []string{"1", "2", "3"} {
		if _, err := h(message.NewMessage(id, nil)); err != nil {
			var le *ratelimit.LimitedError
			if errors.As(err, &le) {
				// The next token is due at most 1/rate (100ms) from now;
				// how much less depends on the time the calls took.
				fmt.Println("limited", id, "retry within 100ms:", le.RetryAfter() > 0 && le.RetryAfter() <= 100*time.Millisecond)
			}
		}
	}
	// Output:
	// handled 1
	// handled 2
	// limited 3 retry within 100ms: true
}

func Example_perKey() {
	// One message per customer per second; customers do not share.
	l, _ := ratelimit.New(ratelimit.WithMode(ratelimit.ModeReject),
		ratelimit.WithKeyMetadata("customer_id"), ratelimit.WithPerKey(1, 1))
	defer l.Close()
	h := l.Middleware(func(msg *message.Message) ([]*message.Message, error) { return nil, nil })
	for _, c := range []string{"alice", "alice", "bob"} {
		msg := message.NewMessage(c, nil)
		msg.Metadata.Set("customer_id", c)
		_, err := h(msg)
		fmt.Println(c, errors.Is(err, ratelimit.ErrLimited))
	}
	// Output:
	// alice false
	// alice true
	// bob false
}

func ExampleNew_invalid() {
	_, err := ratelimit.New(ratelimit.WithRate(-1))
	fmt.Println(errors.Is(err, ratelimit.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// levee/ratelimit: invalid configuration: rate must be a finite number of events per second, 0 or more (got -1)
}

func ExampleConfig() {
	rate, burst := 50.0, 5
	c := ratelimit.Config{Rate: &rate, Burst: &burst, Mode: "wait",
		Key: &ratelimit.KeyConfig{Metadata: "customer_id"}, PerKey: &ratelimit.PerKeyConfig{Rate: 1}}
	if err := c.Validate(); err != nil {
		panic(err)
	}
	l, _ := ratelimit.New(c.Options()...)
	defer l.Close()
	fmt.Println(l.Rate(), l.Burst(), l.Mode())
	// Output: 50 5 wait
}
