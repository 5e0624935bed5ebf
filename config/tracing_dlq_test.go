package config_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/tracing"
)

// letters records the messages published to it.
type letters struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (l *letters) Publish(_ string, msgs ...*message.Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, msgs...)
	return nil
}

func (*letters) Close() error { return nil }

// TestDeadLetterPublishIsTraced: with a tracing and a dlq section, the dead
// letter is published through Deps.Publisher decorated by the handler's
// tracer: a "publish <dlq topic>" producer span, child of the consumer
// span, whose context the dead letter carries, so the letter (and a
// replay's link) leads back to the failed delivery even when the message
// came without a trace context, or with a forged one.
func TestDeadLetterPublishIsTraced(t *testing.T) {
	for _, tc := range []struct {
		name, traceparent string
		predecorated      bool
	}{
		{"no incoming trace", "", false},
		{"forged traceparent", "00-00000000000000000000000000000000-0000000000000000-01", false},
		{"publisher decorated already", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("levee.yaml", []byte("handlers:\n  pay:\n    tracing: {}\n    dlq: {topic: pay.dlq, retry: {max_attempts: 1}}\n"), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			pub := &letters{}
			var deps message.Publisher = pub
			if tc.predecorated {
				own, err := tracing.New(tracing.WithTracerProvider(tp))
				if err != nil {
					t.Fatal(err)
				}
				deps, _ = own.DecoratePublisher(pub)
			}
			a, err := config.Build(cfg, config.Deps{Publisher: deps, TracerProvider: tp})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = a.Close() }()
			h := a.Stack("pay").Middleware(func(*message.Message) ([]*message.Message, error) {
				return nil, dlq.Permanent(errors.New("bad order"))
			})
			msg := message.NewMessage("m1", nil)
			if tc.traceparent != "" {
				msg.Metadata.Set(tracing.KeyTraceparent, tc.traceparent)
			}
			if _, err := h(msg); err != nil {
				t.Fatalf("handler: %v, want the message dead-lettered and acked", err)
			}
			if len(pub.msgs) != 1 {
				t.Fatalf("dead letters: got %d, want 1", len(pub.msgs))
			}
			var process, publish sdktrace.ReadOnlySpan
			publishes := 0
			for _, s := range rec.Ended() {
				switch s.Name() {
				case "process":
					process = s
				case "publish pay.dlq":
					publish = s
					publishes++
				}
			}
			if publishes > 1 {
				t.Errorf("publish pay.dlq spans: got %d, want 1 (the publisher traced once)", publishes)
			}
			if process == nil || publish == nil {
				t.Fatalf("spans: got process %v, publish %v, want both", process != nil, publish != nil)
			}
			if publish.Parent().SpanID() != process.SpanContext().SpanID() || publish.SpanKind() != trace.SpanKindProducer {
				t.Errorf("publish pay.dlq: parent %s kind %s, want the consumer span %s, producer", publish.Parent().SpanID(), publish.SpanKind(), process.SpanContext().SpanID())
			}
			link, ok := tracing.LinkFromMetadata(pub.msgs[0].Metadata)
			if !ok || link.SpanContext.TraceID() != process.SpanContext().TraceID() {
				t.Errorf("dead letter traceparent %q: want one in the failed delivery's trace %s", pub.msgs[0].Metadata.Get(tracing.KeyTraceparent), process.SpanContext().TraceID())
			}
		})
	}
}
