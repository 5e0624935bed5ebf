//go:build integration

package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/adapters/nats"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// Topics with dots (Levee's default dead-letter topic is "<topic>.dlq")
// work on NATS JetStream, whose stream names cannot contain dots.
func TestNATSDottedTopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := nats.New(ctx, nats.Config{URL: brokertest.NATSURL()}, transport.Settings{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	topic := "levee_test_" + watermill.NewShortUUID() + ".orders.dlq"
	msgs, err := tr.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Publisher.Publish(topic, message.NewMessage("m1", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if m.UUID != "m1" {
			t.Fatalf("got %s, want m1", m.UUID)
		}
		m.Ack()
	case <-ctx.Done():
		t.Fatal("message on a dotted topic not received")
	}
}
