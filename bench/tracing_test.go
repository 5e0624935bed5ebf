package bench

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/tracing"
)

// tracingDropProcessor is a span processor that exports nothing, so the
// benchmark measures span creation, attributes and ending, not an exporter.
type tracingDropProcessor struct{}

func (tracingDropProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (tracingDropProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (tracingDropProcessor) Shutdown(context.Context) error                  { return nil }
func (tracingDropProcessor) ForceFlush(context.Context) error                { return nil }

func tracingHandler(*message.Message) ([]*message.Message, error) { return nil, nil }

func tracingProducingHandler(*message.Message) ([]*message.Message, error) {
	return []*message.Message{message.NewMessage("out", nil)}, nil
}

func tracingMessage() *message.Message {
	msg := message.NewMessage("7e2f1b8c-0000-4000-8000-000000000001", []byte(`{"order":42}`))
	msg.Metadata.Set(tracing.KeyTraceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	return msg
}

// tracingStack builds the tracing and metrics slots; with nil providers
// both are off (the default).
func tracingStack(b *testing.B, tp *sdktrace.TracerProvider, mp *sdkmetric.MeterProvider) message.HandlerMiddleware {
	b.Helper()
	var topts, mopts []tracing.Option
	if tp != nil {
		topts = append(topts, tracing.WithTracerProvider(tp), tracing.WithSystem("gochannel"))
	}
	if mp != nil {
		topts = append(topts, tracing.WithMeterProvider(mp))
		mopts = append(mopts, tracing.WithMeterProvider(mp))
	}
	tr, err := tracing.New(topts...)
	if err != nil {
		b.Fatal(err)
	}
	m, err := tracing.NewMetrics(mopts...)
	if err != nil {
		b.Fatal(err)
	}
	return middleware.NewStack().Tracing(tr.Middleware).Metrics(m.Middleware).Middleware
}

func tracingProviders(b *testing.B) (*sdktrace.TracerProvider, *sdkmetric.MeterProvider) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(tracingDropProcessor{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return tp, mp
}

// BenchmarkTracingMiddleware compares, per message, a bare handler, the
// tracing and metrics slots with telemetry off (the default), and with the
// SDK on (AlwaysSample, spans dropped at end; metrics into a manual reader).
func BenchmarkTracingMiddleware(b *testing.B) {
	tp, mp := tracingProviders(b)
	cases := []struct {
		name string
		h    message.HandlerFunc
	}{
		{"bare", tracingHandler},
		{"off", tracingStack(b, nil, nil)(tracingHandler)},
		{"sdk_metrics_only", tracingStack(b, nil, mp)(tracingHandler)},
		{"sdk_traces_only", tracingStack(b, tp, nil)(tracingHandler)},
		{"sdk_always_sample", tracingStack(b, tp, mp)(tracingHandler)},
		{"handrolled_otel_span", tracingHandRolled(tp, tracingHandler)},
		{"bare_producing", tracingProducingHandler},
		{"off_producing", tracingStack(b, nil, nil)(tracingProducingHandler)},
		{"sdk_always_sample_producing", tracingStack(b, tp, mp)(tracingProducingHandler)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			msg := tracingMessage()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.h(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTracingMiddlewareParallel is the SDK-on and off cases under
// concurrent handlers.
func BenchmarkTracingMiddlewareParallel(b *testing.B) {
	tp, mp := tracingProviders(b)
	for _, c := range []struct {
		name string
		h    message.HandlerFunc
	}{
		{"bare", tracingHandler},
		{"off", tracingStack(b, nil, nil)(tracingHandler)},
		{"sdk_always_sample", tracingStack(b, tp, mp)(tracingHandler)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				msg := tracingMessage()
				for pb.Next() {
					if _, err := c.h(msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// tracingHandRolled is the minimal middleware a user would write by hand
// with the OTel API (and what the unmaintained Watermill integrations do):
// extract with a MapCarrier, start a consumer span, end it. No attributes,
// outcome, produced-message injection or validation: the floor of the SDK
// cost.
func tracingHandRolled(tp *sdktrace.TracerProvider, next message.HandlerFunc) message.HandlerFunc {
	tr := tp.Tracer("handrolled")
	prop := propagation.TraceContext{}
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := prop.Extract(msg.Context(), propagation.MapCarrier(msg.Metadata))
		_, span := tr.Start(ctx, "process", trace.WithSpanKind(trace.SpanKindConsumer))
		defer span.End()
		return next(msg)
	}
}

type tracingNopPublisher struct{}

func (tracingNopPublisher) Publish(string, ...*message.Message) error { return nil }
func (tracingNopPublisher) Close() error                              { return nil }

// BenchmarkTracingPublisher compares publishing one message through a bare
// publisher and through the tracing decorator (off, and SDK on).
func BenchmarkTracingPublisher(b *testing.B) {
	tp, _ := tracingProviders(b)
	off, err := tracing.New()
	if err != nil {
		b.Fatal(err)
	}
	on, err := tracing.New(tracing.WithTracerProvider(tp))
	if err != nil {
		b.Fatal(err)
	}
	offPub, _ := off.DecoratePublisher(tracingNopPublisher{})
	onPub, _ := on.DecoratePublisher(tracingNopPublisher{})
	for _, c := range []struct {
		name string
		pub  message.Publisher
	}{{"bare", tracingNopPublisher{}}, {"off", offPub}, {"sdk_always_sample", onPub}} {
		b.Run(c.name, func(b *testing.B) {
			msg := message.NewMessage("u", []byte("x"))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.pub.Publish("orders", msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
