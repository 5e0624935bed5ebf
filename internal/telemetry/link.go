package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Bounds of the W3C trace context values read from message metadata
// (tracing.MaxTraceparentLen and tracing.MaxTracestateLen).
const (
	MaxTraceparentLen = 512
	MaxTracestateLen  = 32 * 1024
)

// w3c is a carrier of one traceparent and tracestate.
type w3c struct{ parent, state string }

func (c w3c) Get(key string) string {
	switch key {
	case "traceparent":
		return c.parent
	case "tracestate":
		return c.state
	}
	return ""
}

func (w3c) Set(string, string) {}

func (w3c) Keys() []string { return []string{"traceparent", "tracestate"} }

// LinkFromMetadata returns a link to the span context in md's W3C
// traceparent (and tracestate), and whether there was a valid one. A
// traceparent over MaxTraceparentLen is not parsed; a tracestate over
// MaxTracestateLen is dropped. It never panics; md may be nil.
func LinkFromMetadata(md map[string]string) (trace.Link, bool) {
	parent := md["traceparent"]
	if parent == "" || len(parent) > MaxTraceparentLen {
		return trace.Link{}, false
	}
	state := md["tracestate"]
	if len(state) > MaxTracestateLen {
		state = ""
	}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), w3c{parent, state}))
	if !sc.IsValid() {
		return trace.Link{}, false
	}
	return trace.Link{SpanContext: sc}, true
}
