package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestFleetBreakerStoreLostWhileDraining: with on_store_error local, a
// store that fails while the fleet drains leaves the replica on the last
// fleet state (docs/FLEET.md), draining on its own clock at its share of
// the ramp, then closed once the drain window has passed. Before, it
// closed at once: the backlog the drain exists to pace hit the downstream
// that had just recovered, at full speed.
func TestFleetBreakerStoreLostWhileDraining(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		b := newFleet(t, s, "a", breaker.OnStoreError(fleet.Local))
		defer b.Close()
		var down atomic.Bool
		down.Store(true)
		var calls atomic.Int64
		h := b.Middleware(func(*message.Message) ([]*message.Message, error) {
			if down.Load() {
				return nil, errDownstream
			}
			calls.Add(1)
			return nil, nil
		})
		for i := range 10 {
			_, _ = h(message.NewMessage(fmt.Sprint("down-", i), nil))
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetOpen {
			t.Fatalf("state %s after the failures, want open", st)
		}
		down.Store(false)
		probed := make(chan struct{})
		go func() { _, _ = h(message.NewMessage("probe", nil)); close(probed) }()
		testkit.Advance(time.Second + 2*breaker.DefaultFleetReportEvery)
		<-probed
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetDraining {
			t.Fatalf("state %s after a good probe, want draining", st)
		}

		s.SetErr(errors.New("store down"))
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if st := b.State(); st != breaker.FleetDraining {
			t.Errorf("state %s with the store down while draining, want draining (the last fleet state)", st)
		}
		calls.Store(0)
		const backlog = 200
		done := make(chan struct{}, backlog)
		for i := range backlog {
			go func() { _, _ = h(message.NewMessage(fmt.Sprint("backlog-", i), nil)); done <- struct{}{} }()
		}
		testkit.Advance(100 * time.Millisecond)
		// The ramp is below 100/s (DrainRate) for the whole window: at most
		// 10 calls in 100ms, and a token or two of burst.
		if n := calls.Load(); n > 15 {
			t.Errorf("%d of a backlog of %d ran in the 100ms after the store failed while draining, want at most 15 (the ramp, below 100/s)", n, backlog)
		}
		testkit.Advance(5 * time.Second) // the drain window passes (and the max hold): the rest run or are deferred
		for range backlog {
			<-done
		}
		if st := b.State(); st != breaker.FleetClosed {
			t.Errorf("state %s after the drain window with the store down, want closed", st)
		}
	})
}

// A store outage while the fleet breaker drains is one fallback of one
// breaker: levee.fleet.fallbacks counts 1 and levee.fleet.degraded is 1
// (the drain's token pool, which fails too, is not a second breaker), and
// both go back once the store answers.
func TestFleetBreakerOutageDuringDrainCountsOnce(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		s := fleet.NewMemStore()
		b, err := breaker.NewFleet(breaker.Fleet{Store: s, Key: "payments", Name: "payments", MeterProvider: mp, MinRequests: 10,
			Window: time.Second, OpenFor: time.Second, DrainWindow: 20 * time.Second, DrainRate: 10, OnStoreError: breaker.OnStoreError(fleet.Local),
			MaxHold: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		down := true
		h := b.Middleware(func(*message.Message) ([]*message.Message, error) {
			if down {
				return nil, errDownstream
			}
			return nil, nil
		})
		for i := range 10 {
			_, _ = h(message.NewMessage(fmt.Sprint(i), nil))
		}
		testkit.Advance(2 * breaker.DefaultFleetReportEvery)
		down = false
		testkit.Advance(time.Second + 2*breaker.DefaultFleetReportEvery)
		_, _ = h(message.NewMessage("probe", nil))
		testkit.Advance(2 * breaker.DefaultFleetReportEvery)
		if st := b.State(); st != breaker.FleetDraining {
			t.Fatalf("state %s after a good probe, want draining", st)
		}
		s.SetErr(errors.New("redis down"))
		for i := range 20 {
			_, _ = h(message.NewMessage(fmt.Sprint("d", i), nil))
		}
		testkit.Advance(3 * breaker.DefaultFleetReportEvery)
		counts := func() map[string]int64 {
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			out := map[string]int64{}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name == fleet.MetricDegraded || m.Name == fleet.MetricFallbacks {
						for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
							out[m.Name] += dp.Value
						}
					}
				}
			}
			return out
		}
		if got := counts(); got[fleet.MetricFallbacks] != 1 || got[fleet.MetricDegraded] != 1 {
			t.Errorf("store down while draining: got %v, want one fallback and one degraded breaker", got)
		}
		s.SetErr(nil)
		for i := range 5 {
			_, _ = h(message.NewMessage(fmt.Sprint("r", i), nil))
		}
		testkit.Advance(3 * breaker.DefaultFleetReportEvery)
		if got := counts(); got[fleet.MetricFallbacks] != 1 || got[fleet.MetricDegraded] != 0 {
			t.Errorf("store back: got %v, want one fallback and no degraded breaker", got)
		}
	})
}
