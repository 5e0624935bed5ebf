package telemetrytest_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/levee-dev/levee/breaker"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/internal/telemetry"
)

// wantLayouts names the bucket layout of every Levee histogram.
var wantLayouts = map[string]func() []float64{
	"levee.handler.duration":            telemetry.WorkBuckets,
	"levee.batch.duration":              telemetry.WorkBuckets,
	"levee.breaker.wait.duration":       telemetry.PauseBuckets,
	"levee.breaker.drain.wait.duration": telemetry.WaitBuckets,
	"levee.ratelimit.wait.duration":     telemetry.WaitBuckets,
	"levee.priority.wait.duration":      telemetry.WaitBuckets,
}

// TestHistogramBuckets drives every concern's duration histogram through
// the real SDK and checks that each carries its own layout (not OTel's
// default boundaries, which are meant for milliseconds), in seconds, and
// that no Levee histogram was left out of the check.
func TestHistogramBuckets(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	for _, d := range drivers() {
		synctest.Test(t, func(t *testing.T) { d.run(t, mp, 3) })
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var bounds []float64
			switch data := m.Data.(type) {
			case metricdata.Histogram[float64]:
				bounds = data.DataPoints[0].Bounds
			case metricdata.Histogram[int64]:
				continue // levee.batch.size: a count, its own layout (batch/telemetry.go)
			default:
				continue
			}
			seen[m.Name] = true
			want, ok := wantLayouts[m.Name]
			switch {
			case !ok:
				t.Errorf("histogram %s has no expected layout here: add it to wantLayouts", m.Name)
			case !slices.Equal(bounds, want()):
				t.Errorf("%s: boundaries %v, want %v", m.Name, bounds, want())
			case m.Unit != telemetry.UnitSeconds || !strings.HasSuffix(m.Name, "duration"):
				t.Errorf("%s: unit %q, want %q on a duration", m.Name, m.Unit, telemetry.UnitSeconds)
			}
		}
	}
	for name := range wantLayouts {
		if !seen[name] {
			t.Errorf("%s was not recorded by the drivers", name)
		}
	}
}

// TestBreakerStateIsAnEnum: the breaker's state is a gauge of documented
// values with the unit {state}, so the Prometheus exporter names it
// levee_breaker_state, not a _ratio.
func TestBreakerStateIsAnEnum(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	br, err := breaker.New(breaker.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Close() })
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "levee.breaker.state" {
				continue
			}
			if m.Unit != telemetry.UnitState {
				t.Errorf("levee.breaker.state unit %q, want %q", m.Unit, telemetry.UnitState)
			}
			if _, ok := m.Data.(metricdata.Gauge[int64]); !ok {
				t.Errorf("levee.breaker.state is a %T, want an int64 gauge", m.Data)
			}
			return
		}
	}
	t.Fatal("levee.breaker.state not collected")
}

// docs/TELEMETRY.md states how many values the quantile test puts through
// each instrument and its tolerance.
func TestQuantileDocStatesTheTest(t *testing.T) {
	raw, err := os.ReadFile("../../docs/TELEMETRY.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(raw)), " ")
	for _, want := range []string{
		fmt.Sprintf("%d values per instrument", samplesPerInstrument),
		"by at most a factor of 2.5",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/TELEMETRY.md does not say %q", want)
		}
	}
}
