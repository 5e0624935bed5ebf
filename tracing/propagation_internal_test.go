package tracing

import (
	"context"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// isTraceparent is the one-extraction shortcut of extract: it may say yes
// only for a traceparent the W3C parser accepts, with exactly the span
// context parsed from it.
func TestIsTraceparent(t *testing.T) {
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, c := range []struct {
		raw  string
		want bool
	}{
		{"00-" + tid + "-" + sid + "-01", true},
		{"00-" + tid + "-" + sid + "-00", true},
		{"00-" + tid + "-" + sid + "-03", true},
		{"00-" + strings.ToUpper(tid) + "-" + sid + "-01", false},
		{"00-" + tid + "-" + sid + "-04", false},
		{"00-" + tid + "-" + sid + "-01-", false},
		{"01-" + tid + "-" + sid + "-01", false}, // valid, but not version 00: the slow path decides
		{"00-" + strings.Repeat("0", 32) + "-" + sid + "-01", false},
		{"00-" + tid + "-" + strings.Repeat("0", 16) + "-01", false},
		{"00-" + tid + "_" + sid + "-01", false},
		{"", false},
	} {
		md := message.Metadata{KeyTraceparent: c.raw}
		sc := trace.SpanContextFromContext(DefaultPropagator().Extract(context.Background(), propagation.MapCarrier(md)))
		got := isTraceparent(sc, c.raw)
		if got != c.want {
			t.Errorf("isTraceparent(%q): got %v, want %v", c.raw, got, c.want)
		}
		if got && !validTraceparent(md) {
			t.Errorf("isTraceparent(%q) accepts what the W3C parser rejects", c.raw)
		}
	}
	// A span context from elsewhere (the context's own) never matches a
	// traceparent it did not come from.
	other := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
	if isTraceparent(other, "00-"+tid+"-"+sid+"-01") {
		t.Error("isTraceparent matched a span context of another trace")
	}
}

// A context that already carries a span context takes the slow path, so a
// malformed traceparent never continues the context's own trace.
func TestExtractMalformedWithContextSpan(t *testing.T) {
	own := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), own)
	md := message.Metadata{KeyTraceparent: "00-" + own.TraceID().String() + "-" + own.SpanID().String() + "-01-x"}
	if _, reason := extract(ctx, DefaultPropagator(), md, true); reason != invalidMalformed {
		t.Fatalf("reason: got %q, want %q", reason, invalidMalformed)
	}
}
