package tracing_test

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/telemetry"
	"github.com/levee-dev/levee/tracing"
)

// The middleware continues the trace in the incoming metadata, exposes the
// consumer span to the handler and the layers inside, records their events,
// and passes the trace on to the messages the handler produces.
func ExampleTracer_Middleware() {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	tr, err := tracing.New(tracing.WithTracerProvider(tp), tracing.WithSystem("kafka"))
	if err != nil {
		fmt.Println(err)
		return
	}
	handler := tr.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		telemetry.AddRetryEvent(msg.Context(), 1, 0, "transient", "gateway timeout") // as the dlq layer would
		return []*message.Message{message.NewMessage("out-1", []byte("shipped"))}, nil
	})

	in := message.NewMessage("in-1", []byte("order"))
	in.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	out, err := handler(in)
	if err != nil {
		fmt.Println(err)
		return
	}

	span := rec.Ended()[0]
	fmt.Println("span:", span.Name(), span.SpanKind())
	fmt.Println("trace:", span.SpanContext().TraceID())
	fmt.Println("parent:", span.Parent().SpanID())
	fmt.Println("event:", span.Events()[0].Name)
	for _, kv := range span.Attributes() {
		if kv.Key == tracing.AttrOutcome {
			fmt.Println("outcome:", kv.Value.AsString())
		}
	}
	produced := out[0].Metadata.Get("traceparent")
	fmt.Println("produced continues trace:", produced[3:35] == span.SpanContext().TraceID().String())
	fmt.Println("produced parent is the consumer span:", produced[36:52] == span.SpanContext().SpanID().String())
	// Output:
	// span: process consumer
	// trace: 4bf92f3577b34da6a3ce929d0e0e4736
	// parent: 00f067aa0ba902b7
	// event: levee.retry
	// outcome: acked
	// produced continues trace: true
	// produced parent is the consumer span: true
}

// A Metrics middleware without a meter provider, like a Tracer without a
// tracer provider, returns the handler unchanged: telemetry is opt-in.
func ExampleNewMetrics() {
	m, err := tracing.NewMetrics() // no WithMeterProvider: off
	if err != nil {
		fmt.Println(err)
		return
	}
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	_, err = h(message.NewMessage("u", nil))
	fmt.Println("enabled:", m.Enabled(), "error:", err)
	// Output:
	// enabled: false error: <nil>
}

// A replayed dead letter starts a new trace linked to the one it failed in.
func ExampleTracer_StartReplay() {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr, err := tracing.New(tracing.WithTracerProvider(tp))
	if err != nil {
		fmt.Println(err)
		return
	}

	deadLetter := message.NewMessage("dl-1", []byte("order"))
	deadLetter.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

	_, span := tr.StartReplay(context.Background(), "orders", deadLetter)
	// publisher.Publish("orders", deadLetter) goes here.
	span.End()

	replay := rec.Ended()[0]
	fmt.Println("span:", replay.Name())
	fmt.Println("new trace:", replay.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736")
	fmt.Println("linked to:", replay.Links()[0].SpanContext.TraceID())
	fmt.Println("original kept:", deadLetter.Metadata.Get(levee.KeyOriginalTraceparent))
	// Output:
	// span: replay orders
	// new trace: true
	// linked to: 4bf92f3577b34da6a3ce929d0e0e4736
	// original kept: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
}
