//go:build integration

package amqp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// TestHeaderFrameLimit: a message whose headers do not fit in one frame
// made RabbitMQ close the publisher's whole connection (501 FRAME_ERROR),
// failing every channel on it, the consumers' acks included. The
// publisher now refuses it with a *levee.TooLargeError naming the
// negotiated limit, without sending it; a message exactly at the limit
// goes through. The limit is the protocol's (frame_max less a frame's 8
// octets of overhead, which RabbitMQ names in its error): RabbitMQ 3.10
// lets through up to 8 bytes more and closes the connection past that.
func TestHeaderFrameLimit(t *testing.T) {
	url := brokertest.AMQPURL()
	brokertest.SkipIfDown(t, url)
	parts, err := New(context.Background(), Config{URL: url}, transport.Settings{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer parts.Close()
	topic := brokertest.Name("frame")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := parts.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}

	// A message with a pad header of n bytes.
	msg := func(n int) *message.Message {
		m := message.NewMessage(watermill.NewUUID(), []byte("x"))
		m.Metadata.Set("pad", strings.Repeat("p", n))
		return m
	}
	err = parts.Publisher.Publish(topic, msg(1<<20))
	var tl *levee.TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, errFrameTooLarge) || tl.Limit <= 0 {
		t.Fatalf("headers of 1 MiB: got %v, want a *levee.TooLargeError with the limit", err)
	}
	limit := int(tl.Limit)
	pub, err := (Marshaler{}).Marshal(msg(0))
	if err != nil {
		t.Fatal(err)
	}
	at := msg(limit - headerFrameSize(pub))
	if err := parts.Publisher.Publish(topic, at); err != nil {
		t.Fatalf("headers at the limit (%d bytes): %v", limit, err)
	}
	over := msg(limit - headerFrameSize(pub) + 1)
	if err := parts.Publisher.Publish(topic, over); !errors.As(err, &tl) || tl.Size != int64(limit+1) {
		t.Fatalf("headers one byte over: got %v, want a *levee.TooLargeError of %d bytes", err, limit+1)
	}
	after := msg(0)
	if err := parts.Publisher.Publish(topic, after); err != nil {
		t.Fatalf("publish after the refusal: %v", err)
	}
	for _, want := range []string{at.UUID, after.UUID} {
		select {
		case m := <-in:
			m.Ack()
			if m.UUID != want {
				t.Errorf("got %s, want %s", m.UUID, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %s not consumed", want)
		}
	}

	// RabbitMQ itself closes the connection past the frame overhead.
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	raw, err := wamqp.DefaultMarshaler{}.Marshal(msg(limit - headerFrameSize(pub) + frameOverhead + 1))
	if err != nil {
		t.Fatal(err)
	}
	_ = ch.Publish("", wamqp.NewDurableQueueConfig(url).Queue.GenerateName(topic), false, false, raw)
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.FrameError {
			t.Errorf("connection closed with %v, want 501 FRAME_ERROR", e)
		}
	case <-time.After(10 * time.Second):
		t.Error("RabbitMQ took headers 9 bytes over the limit: the limit is wrong")
	}
	_ = parts.DeleteTopics(context.Background(), []string{topic})
}
