//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/tracing"
)

// thYAML: handler "first" has a dlq, a rate limit that rejects the second
// of two messages published at once and the retries (deferrals the dlq
// does not wait in process past its 100ms max hold: redeliveries);
// "second" consumes what "first" publishes.
const thYAML = `transport: %s
handlers:
  first:
    tracing: {}
    metrics: true
    recover: true
    dlq: {retry: {max_attempts: 3, initial: 10ms, max: 10ms}, max_hold: 100ms}
    ratelimit: {rate: 2/s, burst: 1, mode: reject}
  second:
    tracing: {}
    metrics: true
`

// TestTraceAcrossTwoHandlers: over every durable transport, a message
// published in a producer span is handled by "first" (rate limited: one of
// two is deferred and redelivered; the first attempt of each fails and is
// retried in place), which publishes a message inside the handler with a
// traced publisher; "second" handles it. Every span is in the producer's
// trace: each "process first" span is a child of the producer span (the
// redelivery after the deferral too), the deferred one has no error
// status, each "publish second" span is a child of the "process first"
// span that ran the handler, and each "process second" span a child of it.
func TestTraceAcrossTwoHandlers(t *testing.T) {
	onEachTransport(t, 3, thRun)
}

func thRun(t *testing.T, transport string, settled func(t *testing.T)) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	first, second := brokertest.Name("th_first"), brokertest.Name("th_second")
	svc, closeSvc := newTopicService(t, fmt.Sprintf(thYAML, transport), config.Deps{TracerProvider: tp}, first)
	defer closeSvc()
	defer func() { _ = svc.Transport.DeleteTopics(context.Background(), second) }()
	tr, err := tracing.New(tracing.WithTracerProvider(tp), tracing.WithSystem(svc.Deps().System))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := tr.DecoratePublisher(svc.Transport.Publisher)
	var mu sync.Mutex
	calls := map[string]int{}
	svc.Handle("first", first, func(msg *message.Message) error {
		mu.Lock()
		calls[msg.UUID]++
		n := calls[msg.UUID]
		mu.Unlock()
		if n == 1 {
			return errors.New("first attempt fails")
		}
		out := message.NewMessage(watermill.NewUUID(), []byte("next"))
		out.SetContext(msg.Context())
		return pub.Publish(second, out)
	})
	got := make(chan struct{}, 8)
	svc.Handle("second", second, func(*message.Message) error { got <- struct{}{}; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	<-svc.Running()
	if settled != nil {
		settled(t)
	}
	pctx, root := tp.Tracer("test").Start(context.Background(), "producer")
	for range 2 {
		m := message.NewMessage(watermill.NewUUID(), []byte("hello"))
		m.SetContext(pctx)
		if err := pub.Publish(first, m); err != nil {
			t.Fatal(err)
		}
	}
	root.End()
	for range 2 {
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			t.Fatal("second did not get two messages")
		}
	}
	thCheck(t, sr, root.SpanContext().TraceID(), first, second)
}

func thCheck(t *testing.T, sr *tracetest.SpanRecorder, tid trace.TraceID, first, second string) {
	t.Helper()
	// Spans end after the consumer downstream may have ended: wait until
	// no span ended for 500ms.
	spans := sr.Ended()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		time.Sleep(500 * time.Millisecond)
		now := sr.Ended()
		if len(now) == len(spans) {
			break
		}
		spans = now
	}
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	parentName := func(s sdktrace.ReadOnlySpan) string {
		if p, ok := byID[s.Parent().SpanID()]; ok {
			return p.Name()
		}
		return "<none>"
	}
	outcome := func(s sdktrace.ReadOnlySpan) string {
		for _, a := range s.Attributes() {
			if a.Key == tracing.AttrOutcome {
				return a.Value.AsString()
			}
		}
		return ""
	}
	count := map[string]int{}
	for _, s := range spans {
		if s.Name() == "producer" {
			continue
		}
		count[s.Name()+" "+outcome(s)]++
		if s.SpanContext().TraceID() != tid {
			t.Errorf("%s (%s): trace %s, want the producer's %s", s.Name(), outcome(s), s.SpanContext().TraceID(), tid)
		}
		want := map[string]string{"process " + first: "publish " + first, "publish " + second: "process " + first,
			"process " + second: "publish " + second, "publish " + first: "producer"}[s.Name()]
		if want != "" && parentName(s) != want {
			t.Errorf("%s (%s): parent %q, want %q", s.Name(), outcome(s), parentName(s), want)
		}
		if outcome(s) == tracing.OutcomeDeferred && s.Status().Code == codes.Error {
			t.Errorf("%s: a deferral has status Error", s.Name())
		}
	}
	if count["process "+first+" "+tracing.OutcomeDeferred] < 1 {
		t.Errorf("no deferred delivery of %s: %v", first, count)
	}
	if count["process "+first+" "+tracing.OutcomeAcked] != 2 || count["publish "+second+" "] != 2 || count["process "+second+" "+tracing.OutcomeAcked] != 2 {
		t.Errorf("spans by name and outcome %v, want 2 acked deliveries of each topic and 2 publishes to %s", count, second)
	}
}
