//go:build integration

package adapters_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTraceOverEveryTransport: on every transport, a message published
// through a decorated publisher inside a span whose context has a
// tracestate and baggage (with characters an adapter must escape) is
// consumed by a traced handler whose first delivery fails (the router
// Nacks it) and whose redelivery succeeds. Both consumer spans are
// children of the producer span, in its trace, with the tracestate; the
// handler sees the baggage on both deliveries.
func TestTraceOverEveryTransport(t *testing.T) {
	for _, tc := range transportCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

			topic := "levee-audit-tracing-" + tc.name + "-" + watermill.NewShortUUID()
			tr := newTransport(t, tc, tc.group)
			if tc.name == "amqp" {
				t.Cleanup(func() { e2eTraceDeleteQueue(t, topic) })
			} else if tc.name != "gochannel" {
				t.Cleanup(func() { _ = tr.DeleteTopics(context.Background(), topic) })
			}
			tracer := e2eTraceTracer(t, tp, tr.Capabilities.System)
			pub, err := tracer.DecoratePublisher(tr.Publisher)
			if err != nil {
				t.Fatal(err)
			}

			var mu sync.Mutex
			var bags []string
			done := make(chan struct{})
			router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			router.AddMiddleware(tr.Middleware)
			router.AddConsumerHandler("audit-tracing-"+tc.name, topic, tr.Subscriber, func(msg *message.Message) error {
				mu.Lock()
				defer mu.Unlock()
				bags = append(bags, baggage.FromContext(msg.Context()).Member("tenant").Value())
				if len(bags) == 1 {
					return errors.New("first delivery fails")
				}
				if len(bags) == 2 {
					close(done)
				}
				return nil
			}).AddMiddleware(tracer.Middleware)
			routerDone := make(chan error, 1)
			go func() { routerDone <- router.Run(ctx) }()
			t.Cleanup(func() {
				_ = router.Close()
				select {
				case <-routerDone:
				case <-time.After(15 * time.Second):
					t.Error("router did not stop")
				}
			})
			select {
			case <-router.Running():
			case <-ctx.Done():
				t.Fatal("router did not start")
			}

			ts, err := trace.ParseTraceState("vendor=a:b;c,other=x")
			if err != nil {
				t.Fatal(err)
			}
			remote := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{0xab, 1}, SpanID: trace.SpanID{0xcd, 1},
				TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
			})
			member, err := baggage.NewMemberRaw("tenant", "a b,ç;\"q\"")
			if err != nil {
				t.Fatal(err)
			}
			bag, err := baggage.New(member)
			if err != nil {
				t.Fatal(err)
			}
			msg := message.NewMessage(watermill.NewUUID(), []byte("hello"))
			msg.SetContext(baggage.ContextWithBaggage(trace.ContextWithRemoteSpanContext(context.Background(), remote), bag))
			if err := pub.Publish(topic, msg); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatal("the message was not redelivered and handled in time")
			}

			var producer sdktrace.ReadOnlySpan
			var consumers []sdktrace.ReadOnlySpan
			for len(consumers) < 2 {
				producer, consumers = nil, nil
				for _, s := range rec.Ended() {
					switch s.Name() {
					case "publish " + topic:
						producer = s
					case "process " + topic:
						consumers = append(consumers, s)
					}
				}
				select {
				case <-ctx.Done():
					t.Fatalf("got %d consumer spans, want 2", len(consumers))
				case <-time.After(20 * time.Millisecond):
				}
			}
			if producer == nil {
				t.Fatal("no producer span")
			}
			if got := producer.SpanContext().TraceID(); got != remote.TraceID() {
				t.Errorf("producer: trace %s, want %s", got, remote.TraceID())
			}
			for i, s := range consumers {
				if got := s.SpanContext().TraceID(); got != remote.TraceID() {
					t.Errorf("consumer %d: trace %s, want %s", i, got, remote.TraceID())
				}
				if got, want := s.Parent().SpanID(), producer.SpanContext().SpanID(); got != want {
					t.Errorf("consumer %d: parent %s, want the producer span %s", i, got, want)
				}
				if got := s.SpanContext().TraceState().String(); got != ts.String() {
					t.Errorf("consumer %d: tracestate %q, want %q", i, got, ts.String())
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for i, b := range bags[:2] {
				if b != member.Value() {
					t.Errorf("delivery %d: baggage tenant %q, want %q", i+1, b, member.Value())
				}
			}
		})
	}
}
