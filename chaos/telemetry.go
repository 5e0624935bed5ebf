package chaos

import (
	"context"
	"sync/atomic"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// spanCounter is a span processor that counts ended spans: the run's
// tracing uses the real SDK without exporting anything.
type spanCounter struct{ ended atomic.Int64 }

func (c *spanCounter) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c *spanCounter) OnEnd(sdktrace.ReadOnlySpan)                     { c.ended.Add(1) }
func (c *spanCounter) Shutdown(context.Context) error                  { return nil }
func (c *spanCounter) ForceFlush(context.Context) error                { return nil }

// telemetry holds the run's SDK providers.
type telemetry struct {
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	reader *sdkmetric.ManualReader
	spans  *spanCounter
}

func newTelemetry() *telemetry {
	spans := &spanCounter{}
	reader := sdkmetric.NewManualReader()
	return &telemetry{
		tp:     sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans), sdktrace.WithSampler(sdktrace.AlwaysSample())),
		mp:     sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		reader: reader,
		spans:  spans,
	}
}

func (t *telemetry) close(ctx context.Context) {
	_ = t.tp.Shutdown(ctx)
	_ = t.mp.Shutdown(ctx)
}

// counters sums every int64 counter point of the named instruments.
func (t *telemetry) counters(ctx context.Context, names ...string) map[string]int64 {
	out := map[string]int64{}
	var rm metricdata.ResourceMetrics
	if err := t.reader.Collect(ctx, &rm); err != nil {
		return out
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
		out[n] = 0
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if !want[m.Name] {
				continue
			}
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, p := range s.DataPoints {
					out[m.Name] += p.Value
				}
			}
		}
	}
	return out
}
