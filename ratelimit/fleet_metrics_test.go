package ratelimit

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// A fleet limit records its round trips and leases, and each fallback is a
// metric (with the mode) and a log line; the recovery is logged too.
func TestFleetMetricsAndFallbackLog(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		logger := watermill.NewCaptureLogger()
		store := fleet.NewMemStore()
		l := mustNew(t, WithName("payments"), WithMeterProvider(mp), WithLogger(logger),
			WithFleet(Fleet{Store: store, Key: "payments", Rate: 100, OnStoreError: StoreFailOpen}))
		h := l.Middleware(noop)
		if _, err := h(message.NewMessage("1", nil)); err != nil {
			t.Fatal(err)
		}
		for l.fleet.pool.TryTake() { // spend the lease
		}
		store.SetErr(errors.New("redis down"))
		if _, err := h(message.NewMessage("2", nil)); err != nil {
			t.Fatalf("fail_open: %v", err)
		}
		store.SetErr(nil)
		testkit.Advance(fleet.DefaultPeriod)

		got := collect(t, reader)
		for _, name := range []string{fleet.MetricRoundTrips, fleet.MetricRoundTrip, fleet.MetricLeased, fleet.MetricFallbacks, fleet.MetricDegraded} {
			if _, ok := got[name]; !ok {
				t.Errorf("no %s", name)
			}
		}
		fb := got[fleet.MetricFallbacks].Data.(metricdata.Sum[int64])
		if len(fb.DataPoints) != 1 || fb.DataPoints[0].Value != 1 || attr(fb.DataPoints[0].Attributes, "mode") != "fail_open" ||
			attr(fb.DataPoints[0].Attributes, "name") != "payments" {
			t.Errorf("fallbacks: %+v", fb.DataPoints)
		}
		if d := got[fleet.MetricDegraded].Data.(metricdata.Sum[int64]); len(d.DataPoints) != 1 || d.DataPoints[0].Value != 0 {
			t.Errorf("degraded after the recovery: %+v", d.DataPoints)
		}
		logs := logger.Captured()
		if errs := logs[watermill.ErrorLogLevel]; len(errs) != 1 || errs[0].Fields["on_store_error"] != "fail_open" {
			t.Errorf("error logs %+v, want one fallback line", errs)
		}
		if infos := logs[watermill.InfoLogLevel]; len(infos) != 1 {
			t.Errorf("info logs %+v, want one recovery line", infos)
		}
	})
}

// A fleet limit closed while its store is down no longer runs on its
// on_store_error mode: levee.fleet.degraded goes back to 0, so
// LeveeFleetStoreDown does not fire for a limiter that is gone.
func TestFleetDegradedEndsOnClose(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		store := fleet.NewMemStore()
		store.SetErr(errors.New("redis down"))
		l, err := New(WithName("payments"), WithMeterProvider(mp),
			WithFleet(Fleet{Store: store, Key: "payments", Rate: 100, OnStoreError: StoreFailOpen}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Middleware(noop)(message.NewMessage("1", nil)); err != nil {
			t.Fatalf("fail_open: %v", err)
		}
		if !l.FleetDegraded() {
			t.Fatal("not degraded with the store down")
		}
		degraded := func() int64 {
			d, ok := collect(t, reader)[fleet.MetricDegraded].Data.(metricdata.Sum[int64])
			if !ok || len(d.DataPoints) != 1 {
				t.Fatalf("degraded: %+v", d)
			}
			return d.DataPoints[0].Value
		}
		if got := degraded(); got != 1 {
			t.Fatalf("degraded with the store down: got %d, want 1", got)
		}
		_ = l.Close()
		if got := degraded(); got != 0 {
			t.Errorf("degraded after Close: got %d, want 0", got)
		}
	})
}
