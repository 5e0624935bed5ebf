//go:build integration

package adapters_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	nc "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
)

// TestNATSPublishDirectives: a producer publishes to a stream of its own
// that allows rollups, with JetStream's Nats-Rollup header (a directive to
// the server for that publish, not the message's data). The message fails
// for good; its dead letter used to carry the header on to the
// dead-letter stream, which Levee created without rollups: JetStream
// refused every publish of it, so the message was Nacked and redelivered
// for ever and never dead-lettered (on a dead-letter stream that allows
// rollups, it would have purged the letters before it). Now the header
// stays with the publish it was meant for, and the letter goes through.
func TestNATSPublishDirectives(t *testing.T) {
	tr := newTransport(t, transportCase{name: "nats", opts: func() []adapters.Option {
		return []adapters.Option{adapters.WithNATS(natsURL), adapters.WithAckDeadline(5 * time.Second)}
	}}, "rollup-"+watermill.NewShortUUID())
	topic := scenarioTopic("nats_rollup")
	conn, err := nc.Connect(natsURL)
	require.NoError(t, err)
	defer conn.Close()
	js, err := conn.JetStream()
	require.NoError(t, err)
	_, err = js.AddStream(&nc.StreamConfig{Name: topic, Subjects: []string{topic}, AllowRollup: true})
	require.NoError(t, err)

	d, err := dlq.New(tr.Publisher)
	require.NoError(t, err)
	var (
		mu      sync.Mutex
		calls   int
		letters []message.Metadata
	)
	router := scenarioRouter(t)
	router.AddMiddleware(tr.Middleware)
	stack := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware)
	router.AddConsumerHandler("nats_rollup", topic, tr.Subscriber, scenarioConsumer(stack.Middleware(scenarioHandler(func(*message.Message) error {
		mu.Lock()
		calls++
		mu.Unlock()
		return dlq.Permanent(errors.New("refused"))
	}))))
	dlTr := newTransport(t, transportCase{name: "nats", opts: func() []adapters.Option {
		return []adapters.Option{adapters.WithNATS(natsURL)}
	}}, "rollup-dl-"+watermill.NewShortUUID())
	router.AddConsumerHandler("dead_letters", topic+".dlq", dlTr.Subscriber, func(msg *message.Message) error {
		mu.Lock()
		letters = append(letters, msg.Metadata)
		mu.Unlock()
		return nil
	})
	scenarioRun(t, router)

	m := nc.NewMsg(topic)
	m.Header.Set(wnats.WatermillUUIDHdr, watermill.NewUUID())
	m.Header.Set(nc.MsgRollup, nc.MsgRollupSubject)
	m.Header.Set("app", "kept")
	m.Data = []byte("order")
	_, err = js.PublishMsg(m)
	require.NoError(t, err)

	scenarioWait(t, "the dead letter", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(letters) > 0
	})
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, calls, "handler calls")
	require.Len(t, letters, 1, "dead letters")
	require.Equal(t, "kept", letters[0].Get("app"))
	require.NotContains(t, letters[0], nc.MsgRollup)
}
