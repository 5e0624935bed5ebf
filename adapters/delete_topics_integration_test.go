//go:build integration

package adapters_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
)

// TestDeleteTopics checks, on every broker, that DeleteTopics removes a
// topic with its messages: a message published before the delete is gone,
// and the topic works again afterwards (created anew on subscribe). Also
// with a consumer group (AMQP: a fanout exchange and a queue per group).
func TestDeleteTopics(t *testing.T) {
	for _, tc := range transportCases(t) {
		if tc.name == "gochannel" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			tr := newTransport(t, tc, tc.group)
			topic := "del_" + strings.ToLower(watermill.NewShortUUID())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if si, ok := tr.Subscriber.(message.SubscribeInitializer); ok {
				require.NoError(t, si.SubscribeInitialize(topic))
			}
			require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage("before", []byte("before"))))
			require.NoError(t, tr.DeleteTopics(ctx, topic, topic+".dlq"))
			require.NoError(t, tr.DeleteTopics(ctx, topic), "deleting again")

			subCtx, stop := context.WithCancel(ctx)
			defer stop()
			ch, err := tr.Subscriber.Subscribe(subCtx, topic)
			require.NoError(t, err)
			require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage("after", []byte("after"))))
			select {
			case msg := <-ch:
				require.Equal(t, "after", string(msg.Payload), "the message published before DeleteTopics survived it")
				msg.Ack()
			case <-ctx.Done():
				t.Fatal("nothing delivered after the topic was deleted and used again")
			}
			stop()
			require.NoError(t, tr.DeleteTopics(context.Background(), topic))
		})
	}
}
