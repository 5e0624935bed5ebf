package tracing_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/tracing"
)

func TestMain(m *testing.M) { testkit.VerifyMain(m) }

// Known W3C values used across the tests.
const (
	testTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	testSpanID      = "00f067aa0ba902b7"
	testTraceparent = "00-" + testTraceID + "-" + testSpanID + "-01"
)

// recorded bundles a span recorder, its provider and a manual metric reader.
type recorded struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newRecorded(t *testing.T) *recorded {
	t.Helper()
	r := &recorded{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(r.spans))
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		_ = r.tp.Shutdown(context.Background())
		_ = r.mp.Shutdown(context.Background())
	})
	return r
}

func (r *recorded) tracer(t *testing.T, opts ...tracing.Option) *tracing.Tracer {
	t.Helper()
	tr, err := tracing.New(append([]tracing.Option{tracing.WithTracerProvider(r.tp), tracing.WithMeterProvider(r.mp)}, opts...)...)
	if err != nil {
		t.Fatalf("tracing.New: %v", err)
	}
	return tr
}

func (r *recorded) metrics(t *testing.T) *tracing.Metrics {
	t.Helper()
	m, err := tracing.NewMetrics(tracing.WithMeterProvider(r.mp))
	if err != nil {
		t.Fatalf("tracing.NewMetrics: %v", err)
	}
	return m
}

// ended returns the ended spans named name.
func (r *recorded) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// one returns the only ended span named name.
func (r *recorded) one(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	got := r.ended(name)
	if len(got) != 1 {
		var names []string
		for _, s := range r.spans.Ended() {
			names = append(names, s.Name())
		}
		t.Fatalf("got %d ended spans named %q, want 1 (ended: %v)", len(got), name, names)
	}
	return got[0]
}

// collect returns the data points of the metric named name.
func (r *recorded) collect(t *testing.T, name string) metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data
			}
		}
	}
	return nil
}

// sum returns the int64 counter value of name with exactly attrs.
func (r *recorded) sum(t *testing.T, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	data := r.collect(t, name)
	if data == nil {
		return 0
	}
	s, ok := data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is %T, want Sum[int64]", name, data)
	}
	want := attribute.NewSet(attrs...)
	for _, dp := range s.DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value
		}
	}
	return 0
}

func attrOf(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func wantAttr(t *testing.T, s sdktrace.ReadOnlySpan, kv attribute.KeyValue) {
	t.Helper()
	got, ok := attrOf(s, kv.Key)
	if !ok {
		t.Errorf("span %q: attribute %s missing, want %s", s.Name(), kv.Key, kv.Value.String())
		return
	}
	if got != kv.Value {
		t.Errorf("span %q: attribute %s = %s, want %s", s.Name(), kv.Key, got.String(), kv.Value.String())
	}
}

func noAttr(t *testing.T, s sdktrace.ReadOnlySpan, key attribute.Key) {
	t.Helper()
	if got, ok := attrOf(s, key); ok {
		t.Errorf("span %q: attribute %s = %s, want none", s.Name(), key, got.String())
	}
}

// classErr is an error with a class.
type classErr struct{ class string }

func (e classErr) Error() string      { return "failed: " + e.class }
func (e classErr) ErrorClass() string { return e.class }

// call runs h wrapped in mw directly (no router) on msg.
func call(mw message.HandlerMiddleware, h message.HandlerFunc, msg *message.Message) ([]*message.Message, error) {
	return mw(h)(msg)
}

func traceIDOf(t *testing.T, s string) trace.TraceID {
	t.Helper()
	id, err := trace.TraceIDFromHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
