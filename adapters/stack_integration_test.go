//go:build integration

package adapters_test

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
)

// TestPanicStackLineBreaks: a panic's dead letter keeps its stack's line
// breaks on RabbitMQ and NATS, so `levee dlq show` prints it line by line.
// Over NATS the header format turned them into spaces before Levee's
// transport encoded such values.
func TestPanicStackLineBreaks(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  adapters.Option
	}{
		{"amqp", adapters.WithAMQP(amqpURL)},
		{"nats", adapters.WithNATS(natsURL)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTransport(t, transportCase{name: tc.name, opts: func() []adapters.Option { return []adapters.Option{tc.opt} }}, "")
			topic := scenarioTopic("stack")
			d, err := dlq.New(tr.Publisher)
			require.NoError(t, err)
			stack := middleware.NewStack().Recover(middleware.Recover).DLQ(d.Middleware)
			dead := newScenarioSet()
			router := scenarioRouter(t)
			router.AddMiddleware(tr.Middleware)
			router.AddConsumerHandler("stack", topic, tr.Subscriber, scenarioConsumer(stack.Middleware(scenarioHandler(func(*message.Message) error {
				panic("boom")
			}))))
			scenarioCollectDeadLetters(router, tr.Subscriber, topic+".dlq", dead)
			scenarioRun(t, router)

			msg := message.NewMessage(watermill.NewUUID(), []byte("x"))
			require.NoError(t, tr.Publisher.Publish(topic, msg))
			scenarioWait(t, "the dead letter", func() bool { return dead.len() == 1 })
			_, msgs := dead.snapshot()
			st := msgs[msg.UUID].Metadata.Get(dlq.KeyStack)
			require.Equal(t, string(dlq.ClassPanic), msgs[msg.UUID].Metadata.Get(dlq.KeyErrorClass))
			require.True(t, strings.HasPrefix(st, "goroutine ") && strings.Count(st, "\n") > 2,
				"levee_stack of the dead letter has %d line breaks: %q", strings.Count(st, "\n"), st)
		})
	}
}
