package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/internal/telemetry"
	"github.com/levee-dev/levee/tracing"
)

// hostile is a producer's value: a megabyte with bytes that are not UTF-8.
var hostile = "bad-\xff\xfe-" + strings.Repeat("x", 1<<20)

// exportable fails unless every string a span carries (attributes, event
// attributes, status description) is valid UTF-8, which OTLP's protobuf
// encoding requires (one invalid string fails the whole export batch,
// every other message's span with it), and at most limit bytes.
func exportable(t *testing.T, s sdktrace.ReadOnlySpan, limit int) {
	t.Helper()
	check := func(where string, kv attribute.KeyValue) {
		if kv.Value.Type() != attribute.STRING {
			return
		}
		v := kv.Value.AsString()
		if !utf8.ValidString(v) || len(v) > limit {
			t.Errorf("span %q %s %s: %d bytes, valid UTF-8 %v; want valid UTF-8 of at most %d bytes",
				s.Name(), where, kv.Key, len(v), utf8.ValidString(v), limit)
		}
	}
	for _, kv := range s.Attributes() {
		check("attribute", kv)
	}
	for _, e := range s.Events() {
		for _, kv := range e.Attributes {
			check("event "+e.Name, kv)
		}
	}
	check("status", attribute.String("description", s.Status().Description))
}

// TestHostileValuesStayExportable: a message whose UUID and whose
// handler's error carry a producer's megabyte of bytes that are not UTF-8
// gives process and publish spans that an OTLP exporter can send: every
// string valid UTF-8 and bounded. (Before the fix messaging.message.id,
// the exception event and the status carried them as they were, and the
// OTLP exporter failed the whole batch: "string field contains invalid
// UTF-8".)
func TestHostileValuesStayExportable(t *testing.T) {
	const limit = telemetry.MaxSpanText
	r := newRecorded(t)
	tr := r.tracer(t)
	failing := func(*message.Message) ([]*message.Message, error) {
		return nil, fmt.Errorf("order %s: %w", hostile, errors.New("not found"))
	}
	if _, err := call(tr.Middleware, failing, message.NewMessage(hostile, nil)); err == nil {
		t.Fatal("the handler's error was lost")
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = call(tr.Middleware, func(*message.Message) ([]*message.Message, error) { panic(hostile) }, message.NewMessage("u", nil))
	}()
	pub, err := tr.DecoratePublisher(failPublisher{err: errors.New("refused " + hostile)})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("orders.dlq", message.NewMessage(hostile, nil)); err == nil {
		t.Fatal("the publisher's error was lost")
	}
	spans := r.spans.Ended()
	if len(spans) != 3 {
		t.Fatalf("spans: got %d want 3", len(spans))
	}
	for _, s := range spans {
		exportable(t, s, limit)
	}
	s := r.ended("process")[0]
	wantAttr(t, s, tracing.AttrOutcome.String(tracing.OutcomeNacked))
	if got, _ := attrOf(s, "messaging.message.id"); !strings.HasPrefix(got.AsString(), "bad-\uFFFD-xxx") {
		t.Errorf("messaging.message.id: got %.20q…, want the UUID's start, U+FFFD for the invalid bytes", got.AsString())
	}
	found := false
	for _, e := range s.Events() {
		for _, kv := range e.Attributes {
			if e.Name == "exception" && kv.Key == "exception.type" {
				found = kv.Value.AsString() == "*fmt.wrapError"
			}
		}
	}
	if !found {
		t.Errorf("exception event: want exception.type *fmt.wrapError; events %v", s.Events())
	}
}

type failPublisher struct{ err error }

func (p failPublisher) Publish(string, ...*message.Message) error { return p.err }
func (p failPublisher) Close() error                              { return nil }

// TestDocsStateTheBounds keeps docs/TELEMETRY.md's bounds of what a
// message brings to a span equal to the code's.
func TestDocsStateTheBounds(t *testing.T) {
	b, err := os.ReadFile("../docs/TELEMETRY.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{
		fmt.Sprintf("valid UTF-8 of at most %d bytes", telemetry.MaxSpanText),
		fmt.Sprintf("oversized (> %d bytes)", tracing.MaxTraceparentLen),
		fmt.Sprintf("A `tracestate` over %d KiB is dropped", tracing.MaxTracestateLen>>10),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/TELEMETRY.md does not say %q", want)
		}
	}
}

// TestStaleTracestateIsNotCarriedOver: a produced message whose metadata
// was copied from a delivery with a rejected traceparent and a tracestate
// gets the consumer span's traceparent (a new trace) and not the old
// tracestate, which belongs to the rejected trace: the next hop would
// otherwise read another trace's vendor state (sampling thresholds
// included) as this trace's. The same holds for a decorated publisher
// whose message metadata came from elsewhere.
func TestStaleTracestateIsNotCarriedOver(t *testing.T) {
	r := newRecorded(t)
	tr := r.tracer(t)
	msg := message.NewMessage("u", nil)
	msg.Metadata.Set(tracing.KeyTraceparent, "00-garbage")
	msg.Metadata.Set(tracing.KeyTracestate, "vendor=old")
	out, err := call(tr.Middleware, func(m *message.Message) ([]*message.Message, error) {
		copied := message.NewMessage("copied", nil)
		copied.Metadata = maps.Clone(m.Metadata)
		return []*message.Message{copied}, nil
	}, msg)
	if err != nil {
		t.Fatal(err)
	}
	s := r.one(t, "process")
	if got := out[0].Metadata.Get(tracing.KeyTracestate); got != s.SpanContext().TraceState().String() {
		t.Errorf("produced tracestate %q, want the consumer span's %q", got, s.SpanContext().TraceState().String())
	}

	pub, _ := tr.DecoratePublisher(failingPublisher{})
	m := message.NewMessage("p", nil)
	m.Metadata.Set(tracing.KeyTraceparent, testTraceparent)
	m.Metadata.Set(tracing.KeyTracestate, "vendor=old")
	other := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{7}, TraceFlags: trace.FlagsSampled})
	m.SetContext(trace.ContextWithSpanContext(context.Background(), other))
	if err := pub.Publish("t", m); err != nil {
		t.Fatal(err)
	}
	if got := m.Metadata.Get(tracing.KeyTracestate); got != "" {
		t.Errorf("published tracestate %q, want none (the publish span's trace has none)", got)
	}
	if got := m.Metadata.Get(tracing.KeyTraceparent); !strings.Contains(got, trace.TraceID{7}.String()) {
		t.Errorf("published traceparent %q, want trace %s", got, trace.TraceID{7})
	}
}
