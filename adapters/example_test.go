package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters"
)

// ExampleBuild builds the embedded GoChannel transport from a config
// section and reads its capabilities.
func ExampleBuild() {
	cfg := adapters.TransportConfig{Kind: "gochannel", Concurrency: 4}
	tr, err := adapters.Build(context.Background(), cfg, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	c := tr.Capabilities
	fmt.Println(c.System, c.MaxInFlight, c.NativeDelay, c.AckDeadline)

	_, err = adapters.Build(context.Background(), adapters.TransportConfig{Kind: "sqs"}, nil)
	fmt.Println(errors.Is(err, adapters.ErrInvalidConfig))
	// Output:
	// gochannel 4 false 0s
	// true
}

type later struct{}

func (later) Error() string             { return "downstream busy" }
func (later) RetryAfter() time.Duration { return 2 * time.Second }

// ExampleRetryAfterMiddleware shows the hook between a handler error and a
// transport's delayed redelivery.
func ExampleRetryAfterMiddleware() {
	h := adapters.RetryAfterMiddleware(func(*message.Message) ([]*message.Message, error) {
		return nil, later{}
	})
	msg := message.NewMessage("1", nil)
	_, err := h(msg)
	fmt.Println(err, msg.Metadata.Get(adapters.MetadataRetryAfter))
	// Output: downstream busy 2s
}
