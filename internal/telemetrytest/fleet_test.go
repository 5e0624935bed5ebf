package telemetrytest_test

import (
	"context"
	"os"
	"regexp"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
)

// TestFleetBreakerStateExportedAsDocumented: the fleet breaker's state
// gauge reaches Prometheus under the name docs/TELEMETRY.md gives it (the
// one a rule or a dashboard would query), and with the state as its value.
func TestFleetBreakerStateExportedAsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/TELEMETRY.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("\\| `" + regexp.QuoteMeta(fleet.MetricState) + "` \\(`(levee_[a-z_]+)`\\)").FindSubmatch(raw)
	if m == nil {
		t.Fatalf("docs/TELEMETRY.md has no row for %s with its Prometheus name", fleet.MetricState)
	}
	want := string(m[1])

	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			t.Fatal(err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		b, err := breaker.NewFleet(breaker.Fleet{Store: fleet.NewMemStore(), Key: "payments", Name: "payments", MeterProvider: mp})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = b.Close() }()
		if err := b.SetForce(context.Background(), breaker.ForceOpen); err != nil {
			t.Fatal(err)
		}
		time.Sleep(breaker.DefaultFleetReportEvery) // as TestFleetBreakerStateGauge: the replica follows the store
		synctest.Wait()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range families {
			names = append(names, f.GetName())
			if f.GetName() != want {
				continue
			}
			if len(f.GetMetric()) != 1 || f.GetMetric()[0].GetGauge().GetValue() != 2 {
				t.Fatalf("%s: got %v, want one gauge at 2 (open, the enum of levee.breaker.state)", want, f.GetMetric())
			}
			return
		}
		t.Fatalf("no %s exported (documented in docs/TELEMETRY.md); exported: %v", want, names)
	})
}
