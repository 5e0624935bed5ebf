package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/telemetry"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/tracing"
)

func TestConsumerSpanContinuesTrace(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t, tracing.WithSystem("rabbitmq"), tracing.WithConsumerGroup("orders-svc"))
	msg := message.NewMessage("uuid-1", []byte("hello"))
	msg.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
	msg.Metadata.Set(tracing.KeyTracestate, "vendor=abc")
	before := msg.Context()

	var inner trace.SpanContext
	_, err := call(tr.Middleware, func(m *message.Message) ([]*message.Message, error) {
		inner = trace.SpanContextFromContext(m.Context())
		return nil, nil
	}, msg)
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	if msg.Context() != before {
		t.Errorf("message context not restored after the middleware")
	}
	s := r.one(t, "process")
	if got, want := s.SpanKind(), trace.SpanKindConsumer; got != want {
		t.Errorf("kind = %v, want %v", got, want)
	}
	if got, want := s.SpanContext().TraceID(), traceIDOf(t, testTraceID); got != want {
		t.Errorf("trace id = %s, want %s (continued from traceparent)", got, want)
	}
	if got := s.Parent(); got.SpanID().String() != testSpanID || !got.IsRemote() {
		t.Errorf("parent = %s remote=%v, want %s remote", got.SpanID(), got.IsRemote(), testSpanID)
	}
	if got := s.Parent().TraceState().Get("vendor"); got != "abc" {
		t.Errorf("parent tracestate vendor = %q, want abc", got)
	}
	if inner.SpanID() != s.SpanContext().SpanID() {
		t.Errorf("handler saw span %s, want the consumer span %s", inner.SpanID(), s.SpanContext().SpanID())
	}
	for _, kv := range []attribute.KeyValue{
		semconv.MessagingSystemKey.String("rabbitmq"),
		semconv.MessagingConsumerGroupName("orders-svc"),
		semconv.MessagingMessageID("uuid-1"),
		semconv.MessagingMessageBodySize(5),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		tracing.AttrOutcome.String(tracing.OutcomeAcked),
	} {
		wantAttr(t, s, kv)
	}
	noAttr(t, s, tracing.AttrErrorClass)
	noAttr(t, s, tracing.AttrInvalidParent)
}

func TestConsumerSpanOutcome(t *testing.T) {
	errPlain := errors.New("boom")
	// Every span with status Error has error.type (semconv: conditionally
	// required when the operation failed), and no other span has it.
	typePlain := semconv.ErrorType(errPlain).Value.AsString()
	other := semconv.ErrorTypeOther.Value.AsString()
	tests := []struct {
		name      string
		handler   message.HandlerFunc
		wantErr   bool
		outcome   string
		class     string // "" means no class attribute
		wantCode  codes.Code
		wantEvent string
		errType   string // "" means no error.type attribute
	}{
		{"acked", func(*message.Message) ([]*message.Message, error) { return nil, nil }, false, tracing.OutcomeAcked, "", codes.Unset, "", ""},
		{"nacked default class", func(*message.Message) ([]*message.Message, error) { return nil, errPlain }, true, tracing.OutcomeNacked, "transient", codes.Error, "exception", typePlain},
		{"nacked wrapped class", func(*message.Message) ([]*message.Message, error) {
			return nil, fmt.Errorf("wrap: %w", classErr{"validation"})
		}, true, tracing.OutcomeNacked, "validation", codes.Error, "exception", semconv.ErrorType(classErr{}).Value.AsString()},
		{"dead-lettered", func(m *message.Message) ([]*message.Message, error) {
			telemetry.AddDeadLetterEvent(m.Context(), "permanent", "orders.dlq", "fp", 1)
			telemetry.MarkDeadLettered(m.Context(), "permanent", classErr{"permanent"})
			return nil, nil
		}, false, tracing.OutcomeDeadLettered, "permanent", codes.Error, tracing.EventDeadLetter, semconv.ErrorType(classErr{}).Value.AsString()},
		{"dead-lettered empty class", func(m *message.Message) ([]*message.Message, error) {
			telemetry.MarkDeadLettered(m.Context(), "", nil)
			return nil, nil
		}, false, tracing.OutcomeDeadLettered, "permanent", codes.Error, "", other},
		{"recovered panic", middleware.Recover(func(*message.Message) ([]*message.Message, error) { panic("kaput") }),
			true, tracing.OutcomeNacked, "panic", codes.Error, "exception", semconv.ErrorType(&levee.PanicError{}).Value.AsString()},
		{"nacked by the handler", func(m *message.Message) ([]*message.Message, error) { m.Nack(); return nil, nil },
			false, tracing.OutcomeNacked, "transient", codes.Error, "", other},
		// A message handed back at shutdown: neither success nor failure.
		{"canceled", func(*message.Message) ([]*message.Message, error) { return nil, context.Canceled }, true, tracing.OutcomeCanceled, "", codes.Unset, "", ""},
		{"canceled in a retry wait", func(*message.Message) ([]*message.Message, error) {
			return nil, fmt.Errorf("levee/dlq: retry wait interrupted: %w", errors.Join(errPlain, context.Canceled))
		}, true, tracing.OutcomeCanceled, "", codes.Unset, "", ""},
		{"deferred", func(*message.Message) ([]*message.Message, error) { return nil, levee.Defer(time.Second, errPlain) },
			true, tracing.OutcomeDeferred, "", codes.Unset, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorded(t)
			tr := r.tracer(t)
			_, err := call(tr.Middleware, tt.handler, message.NewMessage("u", nil))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			s := r.one(t, "process")
			wantAttr(t, s, tracing.AttrOutcome.String(tt.outcome))
			if tt.class == "" {
				noAttr(t, s, tracing.AttrErrorClass)
			} else {
				wantAttr(t, s, tracing.AttrErrorClass.String(tt.class))
			}
			if tt.errType == "" {
				noAttr(t, s, semconv.ErrorTypeKey)
			} else {
				wantAttr(t, s, semconv.ErrorTypeKey.String(tt.errType))
			}
			if got := s.Status().Code; got != tt.wantCode {
				t.Errorf("status = %v, want %v", got, tt.wantCode)
			}
			if tt.wantEvent != "" {
				found := false
				for _, e := range s.Events() {
					found = found || e.Name == tt.wantEvent
				}
				if !found {
					t.Errorf("event %q missing; events %v", tt.wantEvent, s.Events())
				}
			}
		})
	}
}

func TestConsumerSpanEndsOnPanic(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t)
	msg := message.NewMessage("u", nil)
	before := msg.Context()
	func() {
		defer func() {
			if got := recover(); got != "kaput" {
				t.Errorf("recovered %v, want the handler's panic re-raised", got)
			}
		}()
		_, _ = call(tr.Middleware, func(*message.Message) ([]*message.Message, error) { panic("kaput") }, msg)
	}()
	s := r.one(t, "process")
	wantAttr(t, s, tracing.AttrErrorClass.String("panic"))
	wantAttr(t, s, semconv.ErrorTypeOther)
	if msg.Context() != before {
		t.Errorf("message context not restored after a panic")
	}
}

func TestInvalidTraceparentStartsNewRoot(t *testing.T) {
	long := testTraceparent + "-" + strings.Repeat("a", tracing.MaxTraceparentLen)
	tests := []struct {
		name, traceparent, reason string
	}{
		{"garbage", "not a traceparent", "malformed"},
		{"truncated", testTraceparent[:40], "malformed"},
		{"upper case", strings.ToUpper(testTraceparent), "malformed"},
		{"zero trace id", "00-00000000000000000000000000000000-" + testSpanID + "-01", "malformed"},
		{"version ff", "ff-" + testTraceID + "-" + testSpanID + "-01", "malformed"},
		{"version 00 extra field", testTraceparent + "-extra", "malformed"},
		{"oversized future version", "01" + long[2:], "oversized"},
		{"binary", "\x00\xff\xfe" + testTraceparent, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorded(t)
			tr := r.tracer(t)
			msg := message.NewMessage("u", nil)
			msg.Metadata.Set(tracing.KeyTraceparent, tt.traceparent)
			msg.Metadata.Set(tracing.KeyBaggage, "tenant=acme")
			var bag string
			_, err := call(tr.Middleware, func(m *message.Message) ([]*message.Message, error) {
				bag = baggage.FromContext(m.Context()).Member("tenant").Value()
				return nil, nil
			}, msg)
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			s := r.one(t, "process")
			if s.Parent().IsValid() {
				t.Errorf("parent = %v, want none (new root)", s.Parent())
			}
			if s.SpanContext().TraceID() == traceIDOf(t, testTraceID) {
				t.Errorf("trace id continued from an invalid traceparent")
			}
			wantAttr(t, s, tracing.AttrInvalidParent.Bool(true))
			var reason string
			for _, e := range s.Events() {
				if e.Name == tracing.EventInvalidContext {
					for _, kv := range e.Attributes {
						if kv.Key == telemetry.AttrInvalidReason {
							reason = kv.Value.AsString()
						}
					}
				}
			}
			if reason != tt.reason {
				t.Errorf("invalid reason = %q, want %q", reason, tt.reason)
			}
			if bag != "acme" {
				t.Errorf("baggage tenant = %q, want acme (baggage survives a bad traceparent)", bag)
			}
			if got := r.sum(t, tracing.MetricInvalidContext, telemetry.AttrHandler.String(""), telemetry.AttrTopic.String("")); got != 1 {
				t.Errorf("%s = %d, want 1", tracing.MetricInvalidContext, got)
			}
		})
	}
}

func TestMessageWithoutMetadata(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t)
	msg := &message.Message{UUID: "u"} // nil Metadata, nil context
	out, err := call(tr.Middleware, func(*message.Message) ([]*message.Message, error) {
		return []*message.Message{{UUID: "out"}}, nil
	}, msg)
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	s := r.one(t, "process")
	if s.Parent().IsValid() {
		t.Errorf("parent = %v, want none", s.Parent())
	}
	noAttr(t, s, tracing.AttrInvalidParent)
	if got := r.sum(t, tracing.MetricInvalidContext); got != 0 {
		t.Errorf("invalid contexts = %d, want 0", got)
	}
	want := "00-" + s.SpanContext().TraceID().String() + "-" + s.SpanContext().SpanID().String() + "-01"
	if got := out[0].Metadata.Get(tracing.KeyTraceparent); got != want {
		t.Errorf("produced traceparent = %q, want %q", got, want)
	}
}

func TestProducedMessagesCarryTrace(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t)
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
	msg.Metadata.Set(tracing.KeyBaggage, "tenant=acme")

	own := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{9}, TraceFlags: trace.FlagsSampled})
	out, err := call(tr.Middleware, func(m *message.Message) ([]*message.Message, error) {
		copied := message.NewMessage("copied", nil)
		copied.Metadata = message.Metadata{tracing.KeyTraceparent: testTraceparent} // stale upstream context
		mine := message.NewMessage("mine", nil)
		mine.SetContext(trace.ContextWithSpanContext(context.Background(), own))
		return []*message.Message{message.NewMessage("plain", nil), copied, nil, mine}, nil
	}, msg)
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	s := r.one(t, "process")
	wantTP := "00-" + testTraceID + "-" + s.SpanContext().SpanID().String() + "-01"
	for _, m := range []*message.Message{out[0], out[1]} {
		if got := m.Metadata.Get(tracing.KeyTraceparent); got != wantTP {
			t.Errorf("%s: traceparent = %q, want %q (the consumer span)", m.UUID, got, wantTP)
		}
		if got := m.Metadata.Get(tracing.KeyBaggage); got != "tenant=acme" {
			t.Errorf("%s: baggage = %q, want tenant=acme", m.UUID, got)
		}
		if got := trace.SpanContextFromContext(m.Context()); got.SpanID() != s.SpanContext().SpanID() {
			t.Errorf("%s: context span = %s, want the consumer span", m.UUID, got.SpanID())
		}
	}
	if got, want := out[3].Metadata.Get(tracing.KeyTraceparent), "00-"+own.TraceID().String()+"-"+own.SpanID().String()+"-01"; got != want {
		t.Errorf("message with its own span: traceparent = %q, want %q", got, want)
	}
}

func TestDefaultPropagatorIgnoresGlobal(t *testing.T) {
	// The global propagator is the no-op default in this process.
	md := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})), md)
	if len(md) != 0 {
		t.Skip("a global propagator is installed; the premise does not hold")
	}
	r := newRecorded(t)
	tr := r.tracer(t)
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
	if _, err := call(tr.Middleware, func(*message.Message) ([]*message.Message, error) { return nil, nil }, msg); err != nil {
		t.Fatal(err)
	}
	if got, want := r.one(t, "process").SpanContext().TraceID(), traceIDOf(t, testTraceID); got != want {
		t.Errorf("trace id = %s, want %s", got, want)
	}
}

func TestWithPropagatorsOverrides(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t, tracing.WithPropagators(propagation.Baggage{}))
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
	msg.Metadata.Set(tracing.KeyBaggage, "k=v")
	out, err := call(tr.Middleware, func(*message.Message) ([]*message.Message, error) {
		return []*message.Message{message.NewMessage("o", nil)}, nil
	}, msg)
	if err != nil {
		t.Fatal(err)
	}
	s := r.one(t, "process")
	if s.Parent().IsValid() {
		t.Errorf("parent = %v, want none: the baggage-only propagator ignores traceparent", s.Parent())
	}
	noAttr(t, s, tracing.AttrInvalidParent)
	if got := out[0].Metadata.Get(tracing.KeyTraceparent); got != "" {
		t.Errorf("produced traceparent = %q, want none", got)
	}
	if got := out[0].Metadata.Get(tracing.KeyBaggage); got != "k=v" {
		t.Errorf("produced baggage = %q, want k=v", got)
	}
}

func TestOffIsPassThrough(t *testing.T) {
	tr, err := tracing.New()
	if err != nil {
		t.Fatal(err)
	}
	m, err := tracing.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	h := func(*message.Message) ([]*message.Message, error) { return nil, nil }
	for name, got := range map[string]message.HandlerFunc{"tracer": tr.Middleware(h), "metrics": m.Middleware(h)} {
		if reflect.ValueOf(got).Pointer() != reflect.ValueOf(h).Pointer() {
			t.Errorf("%s off: middleware wrapped the handler, want it returned unchanged", name)
		}
	}
	if tr.Enabled() || m.Enabled() {
		t.Errorf("Enabled() = %v, %v; want false, false", tr.Enabled(), m.Enabled())
	}
	pub := nopPublisher{}
	if got, _ := tr.DecoratePublisher(pub); got != message.Publisher(pub) {
		t.Errorf("decorator off: got %T, want the publisher unchanged", got)
	}
	msg := message.NewMessage("u", nil)
	allocs := testing.AllocsPerRun(100, func() { _, _ = tr.Middleware(m.Middleware(h))(msg) })
	if allocs != 0 {
		t.Errorf("allocs per message with telemetry off = %v, want 0", allocs)
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(string, ...*message.Message) error { return nil }
func (nopPublisher) Close() error                              { return nil }

func TestNewRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  tracing.Option
	}{
		{"system with spaces", tracing.WithSystem(" kafka")},
		{"long group", tracing.WithConsumerGroup(strings.Repeat("g", 256))},
		{"unknown propagator", tracing.Config{Propagators: []string{"b3"}}.Options()[0]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tracing.New(tt.opt); !errors.Is(err, tracing.ErrInvalidConfig) {
				t.Errorf("New: got %v, want ErrInvalidConfig", err)
			}
			if _, err := tracing.NewMetrics(tt.opt); !errors.Is(err, tracing.ErrInvalidConfig) {
				t.Errorf("NewMetrics: got %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestParentFromMessageContext(t *testing.T) {
	existing := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{7}, SpanID: trace.SpanID{7}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	tests := []struct {
		name        string
		traceparent string
		wantParent  trace.SpanID // zero means a new root
		wantInvalid bool
	}{
		{"no traceparent: child of the context's span", "", existing.SpanID(), false},
		{"valid traceparent wins", testTraceparent, mustSpanID(t, testSpanID), false},
		{"garbage traceparent: new root, counted", "00-garbage", trace.SpanID{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorded(t)
			tr := r.tracer(t)
			msg := message.NewMessage("u", nil)
			msg.SetContext(trace.ContextWithRemoteSpanContext(context.Background(), existing))
			if tt.traceparent != "" {
				msg.Metadata.Set(tracing.KeyTraceparent, tt.traceparent)
			}
			if _, err := call(tr.Middleware, func(*message.Message) ([]*message.Message, error) { return nil, nil }, msg); err != nil {
				t.Fatal(err)
			}
			s := r.one(t, "process")
			if got := s.Parent().SpanID(); got != tt.wantParent {
				t.Errorf("parent = %s, want %s", got, tt.wantParent)
			}
			if _, got := attrOf(s, tracing.AttrInvalidParent); got != tt.wantInvalid {
				t.Errorf("invalid parent attribute present = %v, want %v", got, tt.wantInvalid)
			}
		})
	}
}

func mustSpanID(t *testing.T, s string) trace.SpanID {
	t.Helper()
	id, err := trace.SpanIDFromHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestDeliveryCountAttribute(t *testing.T) {
	tests := []struct {
		value string
		want  int64 // 0 means absent
	}{
		{"", 0}, {"1", 1}, {"3", 3}, {"0", 0}, {"-2", 0}, {"x", 0}, {"1e3", 0}, {"99999999999999999999", 0},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			r := newRecorded(t)
			msg := message.NewMessage("u", nil)
			if tt.value != "" {
				msg.Metadata.Set("levee_delivery_count", tt.value)
			}
			if _, err := call(r.tracer(t).Middleware, func(*message.Message) ([]*message.Message, error) { return nil, nil }, msg); err != nil {
				t.Fatal(err)
			}
			s := r.one(t, "process")
			if tt.want == 0 {
				noAttr(t, s, tracing.AttrDeliveryCount)
			} else {
				wantAttr(t, s, tracing.AttrDeliveryCount.Int64(tt.want))
			}
		})
	}
}

func TestOversizedTracestateIsDropped(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t)
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
	msg.Metadata.Set(tracing.KeyTracestate, "a="+strings.Repeat("b", tracing.MaxTracestateLen))
	if _, err := call(tr.Middleware, func(*message.Message) ([]*message.Message, error) { return nil, nil }, msg); err != nil {
		t.Fatal(err)
	}
	s := r.one(t, "process")
	if got, want := s.SpanContext().TraceID(), traceIDOf(t, testTraceID); got != want {
		t.Errorf("trace id = %s, want %s: the traceparent is valid", got, want)
	}
	if got := s.Parent().TraceState().Len(); got != 0 {
		t.Errorf("parent tracestate has %d members, want 0 (dropped)", got)
	}
	noAttr(t, s, tracing.AttrInvalidParent)
}

func TestInjectExtractRoundTrip(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{3}, SpanID: trace.SpanID{4}, TraceFlags: trace.FlagsSampled})
	m, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(m)
	ctx := baggage.ContextWithBaggage(trace.ContextWithSpanContext(context.Background(), sc), bag)
	msg := &message.Message{UUID: "u"} // nil metadata
	tracing.Inject(ctx, msg)
	got := tracing.Extract(context.Background(), msg.Metadata)
	if g := trace.SpanContextFromContext(got); g.TraceID() != sc.TraceID() || g.SpanID() != sc.SpanID() || !g.IsRemote() {
		t.Errorf("round trip span context = %v, want %v (remote)", g, sc)
	}
	if g := baggage.FromContext(got).Member("tenant").Value(); g != "acme" {
		t.Errorf("round trip baggage tenant = %q, want acme", g)
	}
	empty := message.NewMessage("e", nil)
	tracing.Inject(context.Background(), empty)
	if len(empty.Metadata) != 0 {
		t.Errorf("Inject without span or baggage wrote %v", empty.Metadata)
	}
}
