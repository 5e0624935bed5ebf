//go:build integration

package adapters_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/tracing"
)

// TestTraceThroughDeadLetterAndReplay follows one message on every broker
// transport: published in a trace, retried in place and dead-lettered
// (one consumer span with a retry and a dead-letter event), stored by the
// monitor with a traceparent in that trace, and replayed by the replayer
// with tracing.StartReplay: the replay span is a new root linked to the
// letter's trace, and the replayed delivery's consumer span is its child,
// linked to the original trace too.
func TestTraceThroughDeadLetterAndReplay(t *testing.T) {
	for _, tc := range transportCases(t) {
		if tc.name == "gochannel" {
			continue // no broker: TestDeadLetterKeepsTraceAndReplayLinks (tracing)
		}
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			// Short: PostgreSQL truncates the table watermill_<topic> to
			// 63 bytes, and a long topic's table is its .dlq topic's too.
			topic := "lat-" + tc.name + "-" + watermill.NewShortUUID()[:8]
			tr := newTransport(t, tc, tc.group)
			if tc.name == "amqp" {
				t.Cleanup(func() { e2eTraceDeleteQueue(t, topic); e2eTraceDeleteQueue(t, topic+".dlq") })
			} else {
				t.Cleanup(func() { _ = tr.DeleteTopics(context.Background(), topic, topic+".dlq") })
			}
			tracer := e2eTraceTracer(t, tp, tr.Capabilities.System)
			pub, err := tracer.DecoratePublisher(tr.Publisher)
			require.NoError(t, err)
			r, err := dlq.New(pub, dlq.WithTopic(topic+".dlq"), dlq.WithBackoff(dlq.Backoff{Initial: 1, Max: 1, Multiplier: 1, MaxAttempts: 2}))
			require.NoError(t, err)
			store := dlqops.NewMemStore()
			mon, err := dlqops.NewMonitor(store)
			require.NoError(t, err)
			replayed := make(chan struct{}, 1)
			stack := middleware.NewStack().Tracing(tracer.Middleware).DLQ(r.Middleware)
			router := scenarioRouter(t)
			router.AddConsumerHandler("audit-tracing-replay", topic, tr.Subscriber, func(msg *message.Message) error {
				_, err := stack.Middleware(func(m *message.Message) ([]*message.Message, error) {
					if m.Metadata.Get(dlq.KeyReplayOf) == "" {
						return nil, errors.New("downstream down")
					}
					replayed <- struct{}{}
					return nil, nil
				})(msg)
				return err
			})
			router.AddConsumerHandler("audit-tracing-monitor", topic+".dlq", tr.Subscriber, mon.Handle)
			scenarioRun(t, router)

			ctx, root := tp.Tracer("producer").Start(context.Background(), "order")
			msg := message.NewMessage(watermill.NewUUID(), []byte("order"))
			msg.SetContext(ctx)
			require.NoError(t, pub.Publish(topic, msg))
			root.End()
			original := root.SpanContext().TraceID()
			var letters []dlqops.Record
			scenarioWait(t, "the dead letter stored", func() bool {
				letters, err = store.List(context.Background(), dlqops.Filter{Topic: topic})
				return err == nil && len(letters) == 1
			})
			link, ok := tracing.LinkFromMetadata(letters[0].Metadata)
			require.True(t, ok, "the letter has a valid traceparent")
			require.Equal(t, original, link.SpanContext.TraceID(), "the letter's trace")

			rp, err := dlqops.NewReplayer(store, tr.Publisher, dlqops.WithReplayRate(0), dlqops.WithReplayTopics(topic),
				dlqops.WithReplaySpan(tracer.StartReplay))
			require.NoError(t, err)
			_, err = rp.Replay(context.Background(), dlqops.ReplaySelection{Filter: dlqops.Filter{Topic: topic}})
			require.NoError(t, err)
			scenarioWait(t, "the replay handled", func() bool { return len(replayed) == 1 })

			var failed, again, replay sdktrace.ReadOnlySpan
			scenarioWait(t, "the spans ended", func() bool {
				failed, again, replay = nil, nil, nil
				for _, s := range rec.Ended() {
					switch {
					case s.Name() == "replay "+topic:
						replay = s
					case s.Name() == "process "+topic && s.SpanContext().TraceID() == original:
						failed = s
					case s.Name() == "process "+topic:
						again = s
					}
				}
				return failed != nil && again != nil && replay != nil
			})
			events := map[string]int{}
			for _, e := range failed.Events() {
				events[e.Name]++
			}
			require.Equal(t, 1, events[tracing.EventRetry], "retry events of the failed delivery: %v", events)
			require.Equal(t, 1, events[tracing.EventDeadLetter], "dead-letter events of the failed delivery: %v", events)
			require.False(t, replay.Parent().IsValid(), "the replay span is a new root")
			require.Equal(t, replay.SpanContext().SpanID(), again.Parent().SpanID(), "the replayed delivery's parent")
			for _, s := range []sdktrace.ReadOnlySpan{replay, again} {
				linked := false
				for _, l := range s.Links() {
					linked = linked || (l.SpanContext.TraceID() == original && hasAttr(l.Attributes, tracing.AttrLinkType.String("replay_of")))
				}
				require.True(t, linked, "%s links to the original trace %s: %v", s.Name(), original, s.Links())
			}
			require.Equal(t, trace.SpanKindProducer, replay.SpanKind())
		})
	}
}

func hasAttr(attrs []attribute.KeyValue, kv attribute.KeyValue) bool {
	for _, a := range attrs {
		if a == kv {
			return true
		}
	}
	return false
}
