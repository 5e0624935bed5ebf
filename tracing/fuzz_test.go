package tracing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/tracing"
)

func attrSystem(s string) attribute.KeyValue { return semconv.MessagingSystemKey.String(s) }

// FuzzExtract feeds arbitrary traceparent, tracestate and baggage values to
// the extraction and to the middleware: nothing panics, a span always
// starts, and it continues the incoming trace exactly when the traceparent
// is valid and not oversized.
func FuzzExtract(f *testing.F) {
	f.Add(testTraceparent, "vendor=abc", "k=v")
	f.Add(testTraceparent[:30], "", "")
	f.Add("01-"+testTraceID+"-"+testSpanID+"-01-"+strings.Repeat("f", 600), "x", "")
	f.Add("00-"+testTraceID+"-"+testSpanID+"-ff", "a=b,c=d", "k=v;p=1")
	f.Add("", strings.Repeat("a=b,", 100), strings.Repeat("k=v,", 3000))
	f.Add("zz-\x00-\xff", "=", ";;;")
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	f.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr, err := tracing.New(tracing.WithTracerProvider(tp))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, traceparent, tracestate, bag string) {
		md := message.Metadata{}
		for k, v := range map[string]string{tracing.KeyTraceparent: traceparent, tracing.KeyTracestate: tracestate, tracing.KeyBaggage: bag} {
			if v != "" {
				md[k] = v
			}
		}
		extracted := trace.SpanContextFromContext(tracing.Extract(context.Background(), md))
		if extracted.IsValid() && len(traceparent) > tracing.MaxTraceparentLen {
			t.Fatalf("oversized traceparent (%d bytes) accepted", len(traceparent))
		}
		link, linked := tracing.LinkFromMetadata(md)
		if linked != extracted.IsValid() || (linked && link.SpanContext.TraceID() != extracted.TraceID()) {
			t.Fatalf("LinkFromMetadata = %v %v, Extract = %v", link.SpanContext, linked, extracted)
		}
		msg := message.NewMessage("u", []byte(bag))
		msg.Metadata = md
		var got trace.SpanContext
		out, err := tr.Middleware(func(m *message.Message) ([]*message.Message, error) {
			got = trace.SpanContextFromContext(m.Context())
			return []*message.Message{message.NewMessage("o", nil)}, nil
		})(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !got.IsValid() {
			t.Fatalf("no valid consumer span for traceparent %q", traceparent)
		}
		if continued := got.TraceID() == extracted.TraceID(); continued != extracted.IsValid() {
			t.Fatalf("consumer trace %s, extracted %v: continued=%v", got.TraceID(), extracted, continued)
		}
		back := trace.SpanContextFromContext(tracing.Extract(context.Background(), out[0].Metadata))
		if back.TraceID() != got.TraceID() || back.SpanID() != got.SpanID() {
			t.Fatalf("produced message carries %v, want the consumer span %v", back, got)
		}
	})
}
