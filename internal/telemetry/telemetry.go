package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Scope is the instrumentation scope name of every Levee tracer and meter.
const Scope = "github.com/levee-dev/levee"

// Attribute keys shared by every package.
const (
	AttrHandler = attribute.Key("handler")
	AttrTopic   = attribute.Key("topic")
)

// Units used by Levee instruments.
const (
	UnitSeconds  = "s"
	UnitMessages = "{message}"
	UnitRatio    = "1"
	// UnitState is the unit of an enum gauge (levee.breaker.state): its
	// value is one of a documented set of states, not a quantity. A
	// Prometheus exporter drops braced units, so no suffix is added.
	UnitState = "{state}"
)

// Name returns the instrument name levee.<component>.<name>.
func Name(component, name string) string { return "levee." + component + "." + name }

// Meter returns Levee's meter from mp, or a no-op meter when mp is nil.
func Meter(mp metric.MeterProvider) metric.Meter {
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	return mp.Meter(Scope)
}

// Tracer returns Levee's tracer from tp, or a no-op tracer when tp is nil.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	return tp.Tracer(Scope)
}

// Attrs returns a reusable measurement option for handler and topic plus
// extra attributes. Build it once per handler (or per handler and outcome),
// not per message. Passing a single option to Add or Record still builds a
// variadic slice on the heap; for zero allocations keep the slices from
// AddOpts and RecordOpts and spread them (c.Add(ctx, 1, opts...)).
func Attrs(handler, topic string, extra ...attribute.KeyValue) metric.MeasurementOption {
	kv := make([]attribute.KeyValue, 0, 2+len(extra))
	kv = append(kv, AttrHandler.String(handler), AttrTopic.String(topic))
	kv = append(kv, extra...)
	return metric.WithAttributeSet(attribute.NewSet(kv...))
}

// AddOpts returns opts as a reusable slice for Counter.Add calls.
func AddOpts(opts ...metric.MeasurementOption) []metric.AddOption {
	out := make([]metric.AddOption, len(opts))
	for i, o := range opts {
		out[i] = o
	}
	return out
}

// RecordOpts returns opts as a reusable slice for Histogram.Record calls.
func RecordOpts(opts ...metric.MeasurementOption) []metric.RecordOption {
	out := make([]metric.RecordOption, len(opts))
	for i, o := range opts {
		out[i] = o
	}
	return out
}
