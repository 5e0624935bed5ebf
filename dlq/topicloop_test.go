package dlq_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/levee-dev/levee/dlq"
)

// A dead-letter topic that is the consumed topic (a YAML `dlq.topic:`
// naming the handler's own topic) would bring every letter back to the
// handler, forever: the letter is not published and the message Nacked.
func TestTopicLoopNacks(t *testing.T) {
	for name, opt := range map[string]dlq.Option{
		"WithTopic":     dlq.WithTopic("orders"),
		"WithTopicFunc": dlq.WithTopicFunc(func(s string) string { return s }),
	} {
		t.Run(name, func(t *testing.T) {
			pub := newRecPublisher()
			r, err := dlq.New(pub, opt)
			if err != nil {
				t.Fatal(err)
			}
			ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
			router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, 1)
			router.AddConsumerHandler("h", "orders", ps, func(*message.Message) error { return dlq.Permanent(errBoom) }).
				AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc {
					return func(msg *message.Message) ([]*message.Message, error) {
						_, err := h(msg)
						errs <- err
						return nil, nil // ack: one delivery is enough
					}
				}, r.Middleware)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error)
			go func() { done <- router.Run(ctx) }()
			<-router.Running()
			if err := ps.Publish("orders", message.NewMessage("x", nil)); err != nil {
				t.Fatal(err)
			}
			err = <-errs
			cancel()
			<-done
			_ = ps.Close()
			var pe *dlq.PublishError
			if !errors.Is(err, dlq.ErrTopicLoop) || !errors.As(err, &pe) || pe.Topic != "orders" || !errors.Is(pe.Cause, errBoom) {
				t.Fatalf("got %v, want a *PublishError on topic orders wrapping ErrTopicLoop with the handler error as cause", err)
			}
			if pub.total() != 0 {
				t.Errorf("dead letters: got %d, want 0", pub.total())
			}
		})
	}
}
