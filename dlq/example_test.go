package dlq_test

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
)

// printPublisher prints what would go to the dead-letter topic.
type printPublisher struct{}

func (printPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		md := m.Metadata
		fmt.Printf("dead letter on %s: class=%s attempts=%s error=%q payload=%s\n",
			topic, md[dlq.KeyErrorClass], md[dlq.KeyAttempts], md[dlq.KeyError], m.Payload)
	}
	return nil
}

func (printPublisher) Close() error { return nil }

func Example() {
	r, err := dlq.New(printPublisher{},
		dlq.WithTopic("payments.dlq"),
		dlq.WithBackoff(dlq.Backoff{Initial: 1, Max: 1, Multiplier: 1, MaxAttempts: 3}), // 1ns waits for the example
		dlq.WithOnRetry(func(ri dlq.RetryInfo) { fmt.Printf("retry after attempt %d\n", ri.Attempt) }),
	)
	if err != nil {
		panic(err)
	}
	calls := 0
	handler := r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		calls++
		switch string(msg.Payload) {
		case "flaky":
			if calls < 2 {
				return nil, errors.New("gateway timeout")
			}
			return nil, nil
		case "malformed":
			return nil, dlq.Permanent(errors.New("amount missing"))
		}
		return nil, errors.New("bank down")
	})

	for _, p := range []string{"flaky", "malformed", "down"} {
		calls = 0
		_, err := handler(message.NewMessage(p, []byte(p)))
		fmt.Printf("%s: acked=%v after %d call(s)\n", p, err == nil, calls)
	}
	// Output:
	// retry after attempt 1
	// flaky: acked=true after 2 call(s)
	// dead letter on payments.dlq: class=permanent attempts=1 error="amount missing" payload=malformed
	// malformed: acked=true after 1 call(s)
	// retry after attempt 1
	// retry after attempt 2
	// dead letter on payments.dlq: class=exhausted attempts=3 error="bank down" payload=down
	// down: acked=true after 3 call(s)
}
