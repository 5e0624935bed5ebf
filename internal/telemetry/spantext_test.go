package telemetry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestRecordError: an error whose message a span can carry is recorded as
// span.RecordError records it; a megabyte that is not UTF-8 is cut to
// valid UTF-8 of at most MaxSpanText bytes in the exception event and the
// status, with the same exception.type (the batch span and the tracing
// package's spans record errors with it).
func TestRecordError(t *testing.T) {
	for _, c := range []struct {
		name, msg string
		cut       bool
	}{
		{"short", "boom", false},
		{"at the bound", strings.Repeat("b", MaxSpanText), false},
		{"long", strings.Repeat("b", MaxSpanText+1), true},
		{"not UTF-8", "bad \xff", true},
		{"a hostile megabyte", "bad \xff" + strings.Repeat("x", 1<<20), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			_, span := tp.Tracer("t").Start(context.Background(), "s")
			err := errors.New(c.msg)
			RecordError(span, err)
			span.End()
			s := rec.Ended()[0]
			want := c.msg
			if c.cut {
				want = SpanText(c.msg)
				if want == c.msg || len(want) > MaxSpanText || !utf8.ValidString(want) {
					t.Fatalf("SpanText: got %d bytes, valid %v; want a cut to valid UTF-8", len(want), utf8.ValidString(want))
				}
			}
			if s.Status().Code != codes.Error || s.Status().Description != want {
				t.Errorf("status: got %v %.30q, want Error %.30q", s.Status().Code, s.Status().Description, want)
			}
			if len(s.Events()) != 1 || s.Events()[0].Name != "exception" {
				t.Fatalf("events: got %v, want one exception", s.Events())
			}
			got := map[string]string{}
			for _, kv := range s.Events()[0].Attributes {
				got[string(kv.Key)] = kv.Value.AsString()
			}
			if got["exception.type"] != "*errors.errorString" || got["exception.message"] != want {
				t.Errorf("exception: got type %q message %.30q, want *errors.errorString, %.30q", got["exception.type"], got["exception.message"], want)
			}
		})
	}
}

func TestSpanTextOfAUUIDAllocatesNothing(t *testing.T) {
	uuid := "0b9f2b3e-7a5c-4f3e-9d1e-2a4b6c8d0e1f"
	if n := testing.AllocsPerRun(100, func() { _ = SpanText(uuid) }); n != 0 {
		t.Errorf("allocations: got %v want 0", n)
	}
}
