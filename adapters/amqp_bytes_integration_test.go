//go:build integration

package adapters_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
)

// TestAMQPByteArrayHeaders: a producer that sends header values as AMQP
// byte arrays (type 'x', how pika and the Java client send bytes), the
// UUID header among them. The handler sees the bytes as they were sent;
// before, each became fmt.Sprint's decimal list ("[98 105 110]"), in the
// message's UUID, its metadata, its dead letter and a replay of it.
func TestAMQPByteArrayHeaders(t *testing.T) {
	tr, err := adapters.New(context.Background(), adapters.WithAMQP(amqpURL))
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	topic := "amqp_bytes_" + watermill.NewShortUUID()
	t.Cleanup(func() { _ = tr.DeleteTopics(context.Background(), topic) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)

	id := watermill.NewUUID()
	msg := message.NewMessage("", []byte("order"))
	publishAMQPHeaders(t, topic, msg, amqp.Table{
		"_watermill_message_uuid": []byte(id),
		"customer":                []byte("c-42"),
		"binary":                  []byte{0x00, 0xff, 'x'},
		"text":                    "plain",
	})
	select {
	case got := <-ch:
		got.Ack()
		require.Equal(t, id, got.UUID, "UUID")
		require.Equal(t, message.Metadata{"customer": "c-42", "binary": "\x00\xffx", "text": "plain"}, got.Metadata, "metadata")
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered in 10s")
	}
}
