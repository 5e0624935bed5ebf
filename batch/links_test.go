package batch_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/batch"
)

// TestBatchSpanLinksMetadataTraces: a Batcher traced without the tracing
// slot (no span in the message contexts) links its batch span to the W3C
// trace context each message carries in its metadata; a message with a
// garbage traceparent, or none, gets no link.
func TestBatchSpanLinksMetadataTraces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		s := &sink{}
		b := mustNew(t, s.fn, batch.WithMaxSize(4), batch.WithTracerProvider(tp))
		ms := msgs("m", 4, "x")
		want := map[trace.TraceID]bool{}
		for i, m := range ms[:2] {
			tid := trace.TraceID{0xab, byte(i + 1)}
			want[tid] = true
			m.Metadata.Set("traceparent", fmt.Sprintf("00-%s-%s-01", tid, trace.SpanID{0xcd, byte(i + 1)}))
		}
		ms[2].Metadata.Set("traceparent", "00-garbage")
		d := newDelivery()
		d.send(b, ms...)
		d.wg.Wait()
		d.wantDone(t, nil, ids(ms)...)

		var links []sdktrace.Link
		for _, sp := range rec.Ended() {
			if sp.Name() == "batch" {
				links = append(links, sp.Links()...)
			}
		}
		got := map[trace.TraceID]bool{}
		for _, l := range links {
			got[l.SpanContext.TraceID()] = true
		}
		if len(links) != 2 || len(got) != 2 || !got[trace.TraceID{0xab, 1}] || !got[trace.TraceID{0xab, 2}] {
			t.Errorf("batch span links to traces %v, want one to each of %v", got, want)
		}
	})
}

// TestFailedBatchSpanHasErrorType: a batch span whose func failed has
// status Error and error.type (the semantic conventions require it on a
// failed operation); a successful one has neither. Both carry
// messaging.operation.type and .name process, as a batch process span.
func TestFailedBatchSpanHasErrorType(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		boom := errors.New("db down")
		s := &sink{ret: func(ms []*message.Message) error {
			if ms[0].UUID == "bad0" {
				return boom
			}
			return nil
		}}
		b := mustNew(t, s.fn, batch.WithMaxSize(2), batch.WithTracerProvider(tp))
		for _, prefix := range []string{"ok", "bad"} {
			d := newDelivery()
			d.send(b, msgs(prefix, 2, "x")...)
			d.wg.Wait()
		}
		var n int
		for _, sp := range rec.Ended() {
			if sp.Name() != "batch" {
				continue
			}
			n++
			// A messaging process span by the semantic conventions.
			for _, kv := range []attribute.KeyValue{semconv.MessagingOperationTypeProcess, semconv.MessagingOperationName("process")} {
				found := false
				for _, a := range sp.Attributes() {
					found = found || a == kv
				}
				if !found {
					t.Errorf("batch span: attribute %v missing (has %v)", kv, sp.Attributes())
				}
			}
			var got string
			for _, a := range sp.Attributes() {
				if a.Key == semconv.ErrorTypeKey {
					got = a.Value.AsString()
				}
			}
			want := ""
			if sp.Status().Code == codes.Error {
				want = semconv.ErrorType(boom).Value.AsString()
			}
			if got != want {
				t.Errorf("batch span with status %v: error.type %q, want %q", sp.Status().Code, got, want)
			}
		}
		if n != 2 {
			t.Errorf("got %d batch spans, want 2", n)
		}
	})
}
