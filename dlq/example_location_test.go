package dlq_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
)

// locationPublisher prints the function a dead letter names (without its
// file:line, which depends on where the source is).
type locationPublisher struct{}

func (locationPublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		fn, _, _ := strings.Cut(m.Metadata[dlq.KeyCodeLocation], " (")
		fmt.Printf("%s: %s at %s\n", m.Metadata[dlq.KeyErrorClass], m.Metadata[dlq.KeyError], fn)
	}
	return nil
}

func (locationPublisher) Close() error { return nil }

func chargeCard(*message.Message) error { return dlq.Permanent(errors.New("card declined")) }

// Inside a Stack, with a timeout between the dlq and the handler, the
// Retrier set as a layer names the service's handler on every letter.
// Locate names it where the func the Stack wraps is an adapter (here the
// closure that turns a NoPublishHandlerFunc into a HandlerFunc, as
// Watermill's AddConsumerHandler does).
func ExampleRetrier_MiddlewareFor() {
	r, err := dlq.New(locationPublisher{}, dlq.WithTopic("payments.dlq"))
	if err != nil {
		panic(err)
	}
	timeout, err := middleware.NewTimeout(time.Second)
	if err != nil {
		panic(err)
	}
	stack := middleware.NewStack().
		SetLayer(middleware.SlotDLQ, r, r.Label()).
		Timeout(timeout.Middleware).
		Locate(chargeCard)
	adapter := func(msg *message.Message) ([]*message.Message, error) { return nil, chargeCard(msg) }
	_, err = stack.Middleware(adapter)(message.NewMessage("1", nil))
	fmt.Println("acked:", err == nil)
	// Output:
	// permanent: card declined at github.com/levee-dev/levee/dlq_test.chargeCard
	// acked: true
}
