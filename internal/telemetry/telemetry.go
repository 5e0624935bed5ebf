// Package telemetry holds Levee's OpenTelemetry plumbing and naming rules,
// shared by every concern package. The rules (docs/TELEMETRY.md):
//
//   - instrument names are levee.<component>.<name>, lower snake case
//     within a part: levee.breaker.state, levee.ratelimit.wait.duration;
//   - units are UCUM: "s" for durations (float64 histograms), "{message}"
//     for message counts, "1" for ratios;
//   - every per-handler instrument carries the attributes handler and
//     topic; other attributes are named in docs/TELEMETRY.md;
//   - telemetry is opt-in: a nil provider means off (no-op), so a caller who
//     wants the OTel globals passes otel.GetTracerProvider() and
//     otel.GetMeterProvider() explicitly;
//   - per-message recording builds no attributes: precompute an option slice
//     per handler with Attrs and pass it as opts...
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
// not per message: passing it costs no allocation.
func Attrs(handler, topic string, extra ...attribute.KeyValue) metric.MeasurementOption {
	kv := make([]attribute.KeyValue, 0, 2+len(extra))
	kv = append(kv, AttrHandler.String(handler), AttrTopic.String(topic))
	kv = append(kv, extra...)
	return metric.WithAttributeSet(attribute.NewSet(kv...))
}
