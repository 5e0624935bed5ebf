package tracing_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/tracing"
)

// The consumer span costs no allocation beyond what the SDK makes for a
// hand-written consumer span with the same attributes: attributes and start
// options are built once per handler, the outcome context is one
// allocation, and the acked outcome attribute is prebuilt.
func TestConsumerSpanAllocsAsSDK(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr, err := tracing.New(tracing.WithTracerProvider(tp), tracing.WithSystem("gochannel"))
	if err != nil {
		t.Fatal(err)
	}
	noop := func(*message.Message) ([]*message.Message, error) { return nil, nil }
	levee := tr.Middleware(noop)
	sdk := tp.Tracer("hand")
	prop := tracing.DefaultPropagator()
	static := []attribute.KeyValue{
		semconv.MessagingOperationName("process"), semconv.MessagingOperationTypeProcess,
		semconv.MessagingDestinationName(""), tracing.AttrHandler.String(""),
		semconv.MessagingSystemKey.String("gochannel"),
	}
	// What a user would write by hand: the same span, extracted the same
	// way, the outcome recorded, the span in the message context. The
	// Outcome's context (levee's one extra value) is counted by giving the
	// hand-written one a context.WithValue too.
	type outcomeKey struct{}
	hand := func(msg *message.Message) ([]*message.Message, error) {
		orig := msg.Context()
		ctx := prop.Extract(orig, propagation.MapCarrier(msg.Metadata))
		ctx, span := sdk.Start(ctx, "process", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(static...),
			trace.WithAttributes(semconv.MessagingMessageID(msg.UUID), semconv.MessagingMessageBodySize(len(msg.Payload))))
		msg.SetContext(context.WithValue(ctx, outcomeKey{}, new(int)))
		out, err := noop(msg)
		msg.SetContext(orig)
		span.SetAttributes(tracing.AttrOutcome.String(tracing.OutcomeAcked))
		span.End()
		return out, err
	}
	msg := message.NewMessage("u", []byte("x"))
	msg.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
	run := func(h message.HandlerFunc) float64 {
		_, _ = h(msg) // first call builds the per-handler attributes
		return testing.AllocsPerRun(200, func() { _, _ = h(msg) })
	}
	got, want := run(levee), run(hand)
	t.Logf("levee %v, hand-written %v allocs per message", got, want)
	if got > want {
		t.Fatalf("levee consumer span: %v allocs per message, a hand-written SDK span %v", got, want)
	}
}
