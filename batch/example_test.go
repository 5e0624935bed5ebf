package batch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/batch"
)

// A batch func writes several messages at once and fails only the ones it
// could not write; each delivery gets its own result.
func Example() {
	write := func(ctx context.Context, msgs []*message.Message) error {
		failed := &batch.Errors{}
		for i, m := range msgs {
			if string(m.Payload) == "bad" {
				failed.Fail(i, errors.New("rejected by the sink"))
			}
		}
		fmt.Printf("wrote a batch of %d\n", len(msgs))
		return failed
	}
	b, err := batch.New(write, batch.WithMaxSize(3), batch.WithMaxWait(time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	// A transport delivers concurrently; here three goroutines stand in.
	payloads := []string{"apple", "bad", "pear"}
	results := make([]error, len(payloads))
	var wg sync.WaitGroup
	for i, p := range payloads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = b.Handler(message.NewMessage(fmt.Sprint(i), []byte(p)))
		}()
	}
	wg.Wait()
	for i, p := range payloads {
		fmt.Printf("%s: %v\n", p, results[i])
	}
	// Output:
	// wrote a batch of 3
	// apple: <nil>
	// bad: rejected by the sink
	// pear: <nil>
}

func ExampleNew_invalid() {
	_, err := batch.New(func(context.Context, []*message.Message) error { return nil }, batch.WithMaxSize(0))
	fmt.Println(err)
	// Output:
	// levee/batch: invalid configuration: max_size: must be positive, got 0
}
