package telemetrytest_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/tracing"
)

func eventNames(spanEvents []string, name string) bool {
	for _, e := range spanEvents {
		if e == name {
			return true
		}
	}
	return false
}

// TestBreakerEventsOnConsumerSpan: a message waiting behind a forced-open
// breaker (bounded by max hold) leaves levee.breaker.wait and
// levee.breaker.wait.done on the tracing consumer span, which ends nacked.
func TestBreakerEventsOnConsumerSpan(t *testing.T) {
	s := newSDK(t)
	tr, err := tracing.New(tracing.WithTracerProvider(s.tp))
	if err != nil {
		t.Fatal(err)
	}
	br, err := breaker.New(breaker.WithMaxHold(5 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Close() })
	br.ForceOpen()
	h := tr.Middleware(br.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil }))
	if _, err := h(message.NewMessage("u", nil)); err == nil {
		t.Fatal("got nil error behind a forced-open breaker, want a max-hold Nack")
	}
	spans := s.spans.Ended()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	var names []string
	for _, e := range spans[0].Events() {
		names = append(names, e.Name)
	}
	for _, want := range []string{tracing.EventBreakerWait, tracing.EventBreakerWaitDone} {
		if !eventNames(names, want) {
			t.Errorf("event %s missing from the consumer span; events %v", want, names)
		}
	}
	for _, kv := range spans[0].Attributes() {
		if kv.Key == tracing.AttrOutcome && kv.Value.AsString() != tracing.OutcomeDeferred {
			t.Errorf("outcome = %s, want deferred (a max-hold Nack is backpressure, not failure)", kv.Value.AsString())
		}
	}
}

// TestBatchLinksConsumerSpans: messages traced by the tracing middleware
// and batched by the batch package get a batch event on their consumer
// span, and the batch span links every consumer span.
func TestBatchLinksConsumerSpans(t *testing.T) {
	s := newSDK(t)
	tr, err := tracing.New(tracing.WithTracerProvider(s.tp))
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	bt, err := batch.New(func(context.Context, []*message.Message) error { return nil },
		batch.WithMaxSize(n), batch.WithMaxWait(time.Minute), batch.WithTracerProvider(s.tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bt.Close() })
	h := tr.Middleware(bt.Handler)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := h(message.NewMessage("u", nil))
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("delivery: %v", err)
		}
	}
	var consumers []trace.SpanContext
	var links []sdktrace.Link
	for _, sp := range s.spans.Ended() {
		switch sp.SpanKind() {
		case trace.SpanKindConsumer:
			if len(sp.Links()) > 0 {
				links = sp.Links() // the batch span
				continue
			}
			consumers = append(consumers, sp.SpanContext())
			found := false
			for _, e := range sp.Events() {
				found = found || e.Name == tracing.EventBatch
			}
			if !found {
				t.Errorf("consumer span %s has no %s event", sp.SpanContext().SpanID(), tracing.EventBatch)
			}
		}
	}
	if len(consumers) != n || len(links) != n {
		t.Fatalf("got %d consumer spans and a batch span with %d links, want %d and %d", len(consumers), len(links), n, n)
	}
	linked := map[trace.SpanID]bool{}
	for _, l := range links {
		linked[l.SpanContext.SpanID()] = true
	}
	for _, c := range consumers {
		if !linked[c.SpanID()] {
			t.Errorf("batch span does not link consumer span %s", c.SpanID())
		}
	}
}
