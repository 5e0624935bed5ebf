package tracing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/telemetry"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/tracing"
)

// waitSpans waits until at least n spans have ended (the router publishes
// produced messages after the handler chain returns, so the last producer
// span may end after the downstream handler settled).
func (r *recorded) waitSpans(t *testing.T, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.spans.Ended()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d ended spans, want %d", len(got), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func stackOf(tr *tracing.Tracer, m *tracing.Metrics, dlq message.HandlerMiddleware) message.HandlerMiddleware {
	timeout, err := middleware.NewTimeout(time.Minute)
	if err != nil {
		panic(err)
	}
	return middleware.NewStack().
		Tracing(tr.Middleware).
		Metrics(m.Middleware).
		Recover(middleware.Recover).
		DLQ(dlq).
		Timeout(timeout.Middleware).
		Middleware
}

func TestTraceAcrossGoChannelHops(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t, tracing.WithSystem("gochannel"))
	m := r.metrics(t)
	h := testkit.New(t)
	h.Router.AddPublisherDecorators(tr.PublisherDecorator())
	mw := stackOf(tr, m, nil)
	h.Router.AddHandler("enrich", "orders", h.PubSub, "orders.enriched", h.PubSub,
		func(msg *message.Message) ([]*message.Message, error) {
			return []*message.Message{message.NewMessage(watermill.NewUUID(), msg.Payload)}, nil
		}).AddMiddleware(mw)
	h.Handle("ship", "orders.enriched", func(*message.Message) error { return nil }, mw)
	h.Start()

	pub, _ := tr.DecoratePublisher(h.PubSub)
	if err := pub.Publish("orders", message.NewMessage("order-1", []byte("{}"))); err != nil {
		t.Fatal(err)
	}
	h.WaitSettled(2, 5*time.Second)
	r.waitSpans(t, 4)

	pubOrders := r.one(t, "publish orders")
	procOrders := r.one(t, "process orders")
	pubEnriched := r.one(t, "publish orders.enriched")
	procEnriched := r.one(t, "process orders.enriched")
	chain := []struct {
		span   sdktrace.ReadOnlySpan
		kind   trace.SpanKind
		parent sdktrace.ReadOnlySpan
	}{
		{pubOrders, trace.SpanKindProducer, nil},
		{procOrders, trace.SpanKindConsumer, pubOrders},
		{pubEnriched, trace.SpanKindProducer, procOrders},
		{procEnriched, trace.SpanKindConsumer, pubEnriched},
	}
	traceID := pubOrders.SpanContext().TraceID()
	for _, c := range chain {
		if got := c.span.SpanContext().TraceID(); got != traceID {
			t.Errorf("%s: trace id %s, want %s", c.span.Name(), got, traceID)
		}
		if got := c.span.SpanKind(); got != c.kind {
			t.Errorf("%s: kind %v, want %v", c.span.Name(), got, c.kind)
		}
		if c.parent == nil {
			if c.span.Parent().IsValid() {
				t.Errorf("%s: parent %s, want a root", c.span.Name(), c.span.Parent().SpanID())
			}
			continue
		}
		if got, want := c.span.Parent().SpanID(), c.parent.SpanContext().SpanID(); got != want {
			t.Errorf("%s: parent %s, want %s (%s)", c.span.Name(), got, want, c.parent.Name())
		}
	}
	wantAttr(t, procOrders, tracing.AttrHandler.String("enrich"))
	wantAttr(t, procOrders, semconv.MessagingDestinationName("orders"))
	wantAttr(t, procOrders, semconv.MessagingSystemKey.String("gochannel"))
	wantAttr(t, pubEnriched, semconv.MessagingDestinationName("orders.enriched"))
	wantAttr(t, pubEnriched, semconv.MessagingOperationTypeSend)
	wantAttr(t, procEnriched, tracing.AttrHandler.String("ship"))
	wantAttr(t, procEnriched, tracing.AttrOutcome.String(tracing.OutcomeAcked))

	for _, hd := range []struct{ handler, topic string }{{"enrich", "orders"}, {"ship", "orders.enriched"}} {
		got := r.sum(t, tracing.MetricHandlerMessages, telemetry.AttrHandler.String(hd.handler),
			telemetry.AttrTopic.String(hd.topic), telemetry.AttrOutcome.String("acked"))
		if got != 1 {
			t.Errorf("%s{handler=%s,outcome=acked} = %d, want 1", tracing.MetricHandlerMessages, hd.handler, got)
		}
	}
}

// fakeDLQ stands in for the dlq slot: on error it publishes a copy of the
// message (metadata kept) to topic, marks the outcome, and returns nil.
func fakeDLQ(pub message.Publisher, topic string) message.HandlerMiddleware {
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := next(msg)
			if err == nil {
				return out, nil
			}
			dl := msg.Copy()
			dl.SetContext(msg.Context())
			if perr := pub.Publish(topic, dl); perr != nil {
				return nil, errors.Join(err, perr)
			}
			class := telemetry.ErrorClass(err)
			telemetry.AddDeadLetterEvent(msg.Context(), class, topic, "fp", 1)
			telemetry.MarkDeadLettered(msg.Context(), class, nil)
			return nil, nil
		}
	}
}

func TestDeadLetterKeepsTraceAndReplayLinks(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t)
	m := r.metrics(t)
	h := testkit.New(t)
	h.WatchDeadLetters("orders.dlq")
	dlqPub, _ := tr.DecoratePublisher(h.PubSub)
	replayed := make(chan trace.SpanContext, 1)
	h.Handle("pay", "orders", func(msg *message.Message) error {
		if msg.Metadata.Get(levee.KeyOriginalTraceparent) != "" {
			replayed <- trace.SpanContextFromContext(msg.Context())
			return nil
		}
		return classErr{"permanent"}
	}, stackOf(tr, m, fakeDLQ(dlqPub, "orders.dlq")))
	h.Start()

	in := message.NewMessage("order-1", nil)
	in.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
	h.Publish("orders", in)
	h.WaitFor(func(c testkit.Counts) bool { return c.DeadLettered == 1 }, 5*time.Second)
	r.waitSpans(t, 2)

	proc := r.one(t, "process orders")
	wantAttr(t, proc, tracing.AttrOutcome.String(tracing.OutcomeDeadLettered))
	wantAttr(t, proc, tracing.AttrErrorClass.String("permanent"))
	dl := h.DeadLetters()[0]
	dlCtx := tracing.Extract(context.Background(), dl.Metadata)
	if got, want := trace.SpanContextFromContext(dlCtx).TraceID(), traceIDOf(t, testTraceID); got != want {
		t.Errorf("dead letter trace id = %s, want the original %s", got, want)
	}
	if got := r.sum(t, tracing.MetricHandlerMessages, telemetry.AttrHandler.String("pay"), telemetry.AttrTopic.String("orders"),
		telemetry.AttrOutcome.String("dead_lettered"), telemetry.AttrClass.String("permanent")); got != 1 {
		t.Errorf("dead-lettered count = %d, want 1", got)
	}

	// Replay the dead letter: a new trace, linked to the original.
	rep := message.NewMessage("order-1-replay", dl.Payload)
	rep.Metadata = message.Metadata{}
	for k, v := range dl.Metadata {
		rep.Metadata[k] = v
	}
	_, span := tr.StartReplay(context.Background(), "orders", rep)
	h.Publish("orders", rep)
	span.End()
	var got trace.SpanContext
	select {
	case got = <-replayed:
	case <-time.After(5 * time.Second):
		t.Fatal("replayed message not handled")
	}
	r.waitSpans(t, 4)
	replaySpan := r.one(t, "replay orders")
	if replaySpan.Parent().IsValid() {
		t.Errorf("replay span parent = %v, want a new root", replaySpan.Parent())
	}
	if got.TraceID() != replaySpan.SpanContext().TraceID() || got.TraceID() == traceIDOf(t, testTraceID) {
		t.Errorf("replayed consumer trace = %s, want the replay trace %s, not the original", got.TraceID(), replaySpan.SpanContext().TraceID())
	}
	for _, s := range []sdktrace.ReadOnlySpan{replaySpan, r.ended("process orders")[1]} {
		links := s.Links()
		if len(links) != 1 || links[0].SpanContext.TraceID() != traceIDOf(t, testTraceID) {
			t.Errorf("%s: links %v, want one to the original trace %s", s.Name(), links, testTraceID)
			continue
		}
		found := false
		for _, kv := range links[0].Attributes {
			found = found || kv == tracing.AttrLinkType.String("replay_of")
		}
		if !found {
			t.Errorf("%s: link attributes %v, want levee.link.type=replay_of", s.Name(), links[0].Attributes)
		}
	}
}

func TestConcernEventsOnConsumerSpan(t *testing.T) {
	tests := []struct {
		event string
		add   func(ctx context.Context)
		want  map[string]any
	}{
		{tracing.EventRetry, func(ctx context.Context) {
			telemetry.AddRetryEvent(ctx, 2, 150*time.Millisecond, "transient", "gateway timeout")
		}, map[string]any{"levee.retry.attempt": int64(2), "levee.retry.delay": 0.15, "levee.error.class": "transient",
			"levee.error.message": "gateway timeout"}},
		{tracing.EventDeadLetter, func(ctx context.Context) { telemetry.AddDeadLetterEvent(ctx, "exhausted", "x.dlq", "ab12", 5) },
			map[string]any{"levee.error.class": "exhausted", "levee.dlq.topic": "x.dlq", "levee.dlq.fingerprint": "ab12",
				"levee.dlq.attempts": int64(5)}},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			r := newRecorded(t)
			tr := r.tracer(t)
			h := testkit.New(t)
			// Through the whole stack: the timeout slot replaces the context.
			h.Handle("h", "t", func(msg *message.Message) error { tt.add(msg.Context()); return nil }, stackOf(tr, r.metrics(t), nil))
			h.Start()
			h.PublishN("t", 1, nil)
			h.WaitSettled(1, 5*time.Second)
			s := r.one(t, "process t")
			var found bool
			for _, e := range s.Events() {
				if e.Name != tt.event {
					continue
				}
				found = true
				got := map[string]any{}
				for _, kv := range e.Attributes {
					got[string(kv.Key)] = kv.Value.AsInterface()
				}
				for k, v := range tt.want {
					if got[k] != v {
						t.Errorf("event %s attribute %s = %v, want %v", tt.event, k, got[k], v)
					}
				}
			}
			if !found {
				t.Errorf("event %s missing; events %v", tt.event, s.Events())
			}
		})
	}
}

func TestEventHelpersOffAllocateNothing(t *testing.T) {
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		telemetry.AddRetryEvent(ctx, 1, time.Second, "transient", "e")
		telemetry.AddDeferralEvent(ctx, time.Second, "e")
		telemetry.AddDeadLetterEvent(ctx, "permanent", "t", "fp", 1)
		telemetry.MarkDeadLettered(ctx, "permanent", nil)
	})
	if allocs != 0 {
		t.Errorf("allocs = %v, want 0 without a recording span", allocs)
	}
}

func TestLinksForBatch(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t)
	var seen []*message.Message
	collect := func(msg *message.Message) ([]*message.Message, error) {
		c := msg.Copy()
		c.SetContext(msg.Context())
		seen = append(seen, c)
		return nil, nil
	}
	for i := 0; i < 3; i++ {
		if _, err := call(tr.Middleware, collect, message.NewMessage(watermill.NewUUID(), nil)); err != nil {
			t.Fatal(err)
		}
	}
	onlyMD := message.NewMessage("md", nil)
	onlyMD.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
	batch := append(seen, onlyMD, nil, message.NewMessage("none", nil))

	links := tracing.Links(batch)
	if len(links) != 4 {
		t.Fatalf("got %d links, want 4 (3 contexts + 1 metadata)", len(links))
	}
	_, span := r.tp.Tracer("test").Start(context.Background(), "batch", trace.WithLinks(links...))
	span.End()
	procs := r.ended("process")
	for i, s := range procs {
		if links[i].SpanContext.SpanID() != s.SpanContext().SpanID() {
			t.Errorf("link %d = %s, want consumer span %s", i, links[i].SpanContext.SpanID(), s.SpanContext().SpanID())
		}
	}
	if got := links[3].SpanContext.TraceID(); got != traceIDOf(t, testTraceID) {
		t.Errorf("metadata link trace = %s, want %s", got, testTraceID)
	}
	if got := len(r.one(t, "batch").Links()); got != 4 {
		t.Errorf("batch span has %d links, want 4", got)
	}
}

func TestPublisherDecoratorErrors(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t)
	boom := errors.New("broker down")
	pub, _ := tr.DecoratePublisher(failingPublisher{boom})
	msg := message.NewMessage("u", nil)
	msg.Metadata = nil
	before := msg.Context()
	if err := pub.Publish("t", msg); !errors.Is(err, boom) {
		t.Fatalf("got %v, want %v", err, boom)
	}
	s := r.one(t, "publish t")
	if s.Status().Description != boom.Error() {
		t.Errorf("status = %v, want error %q", s.Status(), boom)
	}
	wantAttr(t, s, semconv.ErrorType(boom))
	if msg.Context() != before {
		t.Errorf("message context not restored")
	}
	if msg.Metadata.Get(tracing.KeyTraceparent) == "" {
		t.Errorf("traceparent not injected into nil metadata")
	}
}

type failingPublisher struct{ err error }

func (p failingPublisher) Publish(string, ...*message.Message) error { return p.err }
func (p failingPublisher) Close() error                              { return nil }

func TestStartReplayWithTracingOff(t *testing.T) {
	off, err := tracing.New()
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("dl-1", nil)
	msg.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
	msg.Metadata.Set(tracing.KeyTracestate, "v=1")
	msg.Metadata.Set(tracing.KeyBaggage, "k=v")
	_, span := off.StartReplay(context.Background(), "orders", msg)
	span.End()
	if span.IsRecording() {
		t.Errorf("replay span records with tracing off")
	}
	for key, want := range map[string]string{
		tracing.KeyTraceparent:       "",
		tracing.KeyTracestate:        "",
		tracing.KeyBaggage:           "k=v",
		levee.KeyOriginalTraceparent: testTraceparent,
	} {
		if got := msg.Metadata.Get(key); got != want {
			t.Errorf("metadata %s = %q, want %q", key, got, want)
		}
	}

	// The consumer (tracing on) starts a new trace linked to the original.
	r := newRecorded(t)
	if _, err := call(r.tracer(t).Middleware, func(*message.Message) ([]*message.Message, error) { return nil, nil }, msg); err != nil {
		t.Fatal(err)
	}
	s := r.one(t, "process")
	if s.Parent().IsValid() || s.SpanContext().TraceID() == traceIDOf(t, testTraceID) {
		t.Errorf("replayed consumer continues the original trace; want a new one")
	}
	if l := s.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != mustSpanID(t, testSpanID) {
		t.Errorf("links = %v, want one to the original span %s", l, testSpanID)
	}
}

func TestStartReplayWithoutOriginalContext(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t)
	msg := &message.Message{UUID: "dl-2"} // nil metadata
	_, span := tr.StartReplay(context.Background(), "orders", msg)
	span.End()
	s := r.one(t, "replay orders")
	if len(s.Links()) != 0 {
		t.Errorf("links = %v, want none", s.Links())
	}
	if msg.Metadata.Get(levee.KeyOriginalTraceparent) != "" {
		t.Errorf("original traceparent set without an original")
	}
	if got := trace.SpanContextFromContext(tracing.Extract(context.Background(), msg.Metadata)); got.SpanID() != s.SpanContext().SpanID() {
		t.Errorf("replayed metadata carries %s, want the replay span %s", got.SpanID(), s.SpanContext().SpanID())
	}
}

func TestPublisherDecoratorSameMessageTwice(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t)
	pub, _ := tr.DecoratePublisher(nopPublisher{})
	msg := message.NewMessage("u", nil)
	before := msg.Context()
	if err := pub.Publish("t", msg, msg); err != nil {
		t.Fatal(err)
	}
	if msg.Context() != before {
		t.Errorf("message context not restored when listed twice")
	}
	if got := len(r.ended("publish t")); got != 2 {
		t.Errorf("got %d publish spans, want 2", got)
	}
}
