package telemetry_test

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/internal/telemetry"
)

func ExampleName() {
	fmt.Println(telemetry.Name("breaker", "state"))
	// Output: levee.breaker.state
}

func TestNilProvidersAreNoop(t *testing.T) {
	m := telemetry.Meter(nil)
	c, err := m.Int64Counter(telemetry.Name("x", "y"))
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 1)
	_, span := telemetry.Tracer(nil).Start(context.Background(), "s")
	if span.IsRecording() {
		t.Fatal("nil tracer provider gave a recording span")
	}
	span.End()
}

func TestAttrsCarryHandlerAndTopic(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	c, err := telemetry.Meter(mp).Int64Counter(telemetry.Name("test", "messages"))
	if err != nil {
		t.Fatal(err)
	}
	opts := telemetry.AddOpts(telemetry.Attrs("payments", "orders", attribute.String("outcome", "acked")))
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() { c.Add(ctx, 1, opts...) })
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	sum := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Sum[int64])
	dp := sum.DataPoints[0]
	if rm.ScopeMetrics[0].Scope.Name != telemetry.Scope {
		t.Fatalf("scope %q, want %q", rm.ScopeMetrics[0].Scope.Name, telemetry.Scope)
	}
	for k, want := range map[attribute.Key]string{telemetry.AttrHandler: "payments", telemetry.AttrTopic: "orders", "outcome": "acked"} {
		if got, ok := dp.Attributes.Value(k); !ok || got.AsString() != want {
			t.Fatalf("attribute %s = %v, want %s", k, got, want)
		}
	}
	if dp.Value != 101 {
		t.Fatalf("value %d, want 101", dp.Value)
	}
	if allocs > 0 {
		t.Fatalf("Add with a precomputed option allocated %.1f times", allocs)
	}
}
