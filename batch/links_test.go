package batch_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
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
