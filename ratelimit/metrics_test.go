package ratelimit

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/internal/testkit"
)

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func attr(set attribute.Set, k attribute.Key) string {
	v, _ := set.Value(k)
	return v.String()
}

func TestMetrics(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		l := mustNew(t, WithName("sms"), WithMeterProvider(mp), WithRate(10), WithMode(ModeReject),
			WithKeyFunc(func(m *message.Message) string { return m.Metadata.Get("c") }), WithPerKey(10, 5))
		h := l.Middleware(noop)
		ctx := context.Background() // handler and topic: see TestRouterIntegration
		for i := 0; i < 3; i++ {
			m := message.NewMessage("x", nil)
			m.SetContext(ctx)
			m.Metadata.Set("c", "alice")
			_, _ = h(m) // 1 admitted, 2 rejected (global burst 1)
		}
		m := message.NewMessage("y", nil)
		m.SetContext(ctx)
		_, _ = h(m) // no key: fallback, then rejected

		got := collect(t, reader)
		rej := got["levee.ratelimit.rejected"].Data.(metricdata.Sum[int64])
		if len(rej.DataPoints) != 1 || rej.DataPoints[0].Value != 3 {
			t.Fatalf("rejected: %+v", rej.DataPoints)
		}
		dp := rej.DataPoints[0]
		if attr(dp.Attributes, "reason") != "no_token" || attr(dp.Attributes, "limiter") != "sms" {
			t.Fatalf("rejected attributes: %v", dp.Attributes.ToSlice())
		}
		wait := got["levee.ratelimit.wait.duration"].Data.(metricdata.Histogram[float64])
		if len(wait.DataPoints) != 1 || wait.DataPoints[0].Count != 1 || got["levee.ratelimit.wait.duration"].Unit != "s" {
			t.Fatalf("wait: %+v", wait.DataPoints)
		}
		fb := got["levee.ratelimit.key.fallbacks"].Data.(metricdata.Sum[int64])
		if len(fb.DataPoints) != 1 || fb.DataPoints[0].Value != 1 || attr(fb.DataPoints[0].Attributes, "reason") != "missing" {
			t.Fatalf("fallbacks: %+v", fb.DataPoints)
		}
		limit := got["levee.ratelimit.limit"].Data.(metricdata.Gauge[float64])
		if len(limit.DataPoints) != 1 || limit.DataPoints[0].Value != 10 {
			t.Fatalf("limit: %+v", limit.DataPoints)
		}
		keys := got["levee.ratelimit.keys"].Data.(metricdata.Gauge[int64])
		if len(keys.DataPoints) != 1 || keys.DataPoints[0].Value != 1 {
			t.Fatalf("keys: %+v", keys.DataPoints)
		}
		_ = l.Close()
		if _, ok := collect(t, reader)["levee.ratelimit.limit"]; ok {
			t.Fatal("limit still observed after Close")
		}
	})
}

func TestMetricsAdaptiveAdjustments(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		l := mustNew(t, WithMeterProvider(mp), WithAdaptive(Adaptive{Min: 10, Max: 100, MinSamples: 1}))
		h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, context.DeadlineExceeded })
		for i := 0; i < 100; i++ {
			_, _ = h(message.NewMessage("x", nil))
		}
		adj := collect(t, reader)["levee.ratelimit.adaptive.adjustments"].Data.(metricdata.Sum[int64])
		if len(adj.DataPoints) != 1 || attr(adj.DataPoints[0].Attributes, "direction") != "decrease" || adj.DataPoints[0].Value < 1 {
			t.Fatalf("adjustments: %+v", adj.DataPoints)
		}
		if l.Rate() >= 100 {
			t.Fatalf("rate %v did not decrease", l.Rate())
		}
	})
}
