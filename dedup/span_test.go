package dedup_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/levee-dev/levee/dedup"
)

// traced runs h on a message of uuid inside a recording span, as the
// tracing slot's consumer span is, and returns that span once ended.
func traced(t *testing.T, tp *sdktrace.TracerProvider, rec *tracetest.SpanRecorder, h message.HandlerFunc, uuid string) sdktrace.ReadOnlySpan {
	t.Helper()
	ctx, span := tp.Tracer("test").Start(context.Background(), "process "+uuid)
	m := msg(uuid, "")
	m.SetContext(ctx)
	_, _ = h(m)
	span.End()
	ended := rec.Ended()
	return ended[len(ended)-1]
}

// TestSkippedDuplicateSpanSaysSo: a duplicate acked without running the
// handler, and a delivery deferred because its identity is in progress
// elsewhere, each leave an event on the consumer span; a delivery that
// ran leaves none.
func TestSkippedDuplicateSpanSaysSo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		release := make(chan struct{})
		h := newDedup(t, dedup.WithBusyRetry(time.Second)).Middleware(func(m *message.Message) ([]*message.Message, error) {
			if m.UUID == "slow" {
				<-release
			}
			return nil, nil
		})
		events := func(s sdktrace.ReadOnlySpan) map[string]map[string]any {
			out := map[string]map[string]any{}
			for _, e := range s.Events() {
				attrs := map[string]any{}
				for _, kv := range e.Attributes {
					attrs[string(kv.Key)] = kv.Value.AsInterface()
				}
				out[e.Name] = attrs
			}
			return out
		}

		if ev := events(traced(t, tp, rec, h, "m1")); len(ev) != 0 {
			t.Errorf("first delivery (ran): got events %v, want none", ev)
		}
		ev := events(traced(t, tp, rec, h, "m1"))
		if _, ok := ev["levee.dedup.duplicate"]; !ok || len(ev) != 1 {
			t.Errorf("duplicate: got events %v, want levee.dedup.duplicate", ev)
		}

		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = h(msg("slow", ""))
		}()
		synctest.Wait()
		ev = events(traced(t, tp, rec, h, "slow"))
		if got, ok := ev["levee.dedup.in_progress"]; !ok || got["levee.dedup.retry_after"] != 1.0 {
			t.Errorf("in progress elsewhere: got events %v, want levee.dedup.in_progress with levee.dedup.retry_after 1", ev)
		}
		close(release)
		<-done
	})
}
