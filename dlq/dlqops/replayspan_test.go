package dlqops_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// TestReplaySpanOfAFailedPublish: the replay span of a publish that fails
// has status Error and error.type, as the semantic conventions require of
// a failed operation.
func TestReplaySpanOfAFailedPublish(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	s := dlqops.NewMemStore()
	opsSeed(t, s, 1)
	p := &opsPublisher{}
	down := errors.New("broker down")
	p.setFail(down)
	hook := func(ctx context.Context, topic string, _ *message.Message) (context.Context, trace.Span) {
		return tp.Tracer("test").Start(ctx, "replay "+topic)
	}
	_, _ = opsReplayer(t, s, p, dlqops.WithReplaySpan(hook)).Replay(context.Background(), dlqops.ReplaySelection{})
	spans := rec.Ended()
	if len(spans) == 0 {
		t.Fatal("no replay span ended")
	}
	for _, sp := range spans {
		if sp.Status().Code != codes.Error {
			t.Errorf("%s: status %v, want Error", sp.Name(), sp.Status())
		}
		found := false
		for _, a := range sp.Attributes() {
			found = found || a == semconv.ErrorType(down)
		}
		if !found {
			t.Errorf("%s: attributes %v, want %v", sp.Name(), sp.Attributes(), semconv.ErrorType(down))
		}
	}
}
