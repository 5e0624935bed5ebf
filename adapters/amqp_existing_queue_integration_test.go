//go:build integration

package adapters_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
)

// TestAMQPExistingWatermillQueue checks that a service adopting Levee
// keeps its queues: a queue declared by plain watermill-amqp (no
// arguments) is consumed by a Levee transport with the default section,
// with no PRECONDITION_FAILED.
func TestAMQPExistingWatermillQueue(t *testing.T) {
	tc := transportCases(t)[1]
	topic := "plain_" + strings.ToLower(watermill.NewShortUUID())
	// The existing service: watermill-amqp's subscriber declares the queue
	// (a publisher alone declares nothing), its publisher fills it.
	sub, err := wamqp.NewSubscriber(wamqp.NewDurableQueueConfig(amqpURL), watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, sub.SubscribeInitialize(topic))
	require.NoError(t, sub.Close())
	pub, err := wamqp.NewPublisher(wamqp.NewDurableQueueConfig(amqpURL), watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	t.Cleanup(func() { e2eTraceDeleteQueue(t, topic) })
	require.NoError(t, pub.Publish(topic, message.NewMessage("before-levee", []byte("hello"))))

	tr := newTransport(t, tc, "")
	require.False(t, tr.Capabilities.NativePriority)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	select {
	case msg := <-ch:
		require.Equal(t, "hello", string(msg.Payload))
		msg.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("the message published before Levee was not delivered")
	}
	// Levee's publisher declares the same plain queue: no mismatch either.
	require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage("after", []byte("again"))))
	select {
	case msg := <-ch:
		require.Equal(t, "again", string(msg.Payload))
		msg.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("the message published by Levee was not delivered")
	}
}
