package tracing_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

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
