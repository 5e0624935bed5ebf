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

var errDownstream = errors.New("downstream down")

func newFleet(t *testing.T, s breaker.FleetStore, member string, mode breaker.OnStoreError) *breaker.FleetBreaker {
	t.Helper()
	b, err := breaker.NewFleet(breaker.Fleet{Store: s, Key: "payments", Member: member, MinRequests: 10,
		Window: time.Second, OpenFor: time.Second, DrainWindow: time.Second, DrainRate: 100, OnStoreError: mode,
		MaxHold: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// One replica's failures trip the fleet; every replica learns within one
// report period; after open_for exactly one replica probes; a good probe
// starts the drain, then the fleet closes.
func TestFleetBreakerTripsProbesOnceAndDrains(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		var bs []*breaker.FleetBreaker
		for _, m := range []string{"a", "b", "c"} {
			b := newFleet(t, s, m, breaker.OnStoreError(fleet.Local))
			defer b.Close()
			bs = append(bs, b)
		}
		var down atomic.Bool
		down.Store(true)
		var calls atomic.Int64
		release := make(chan struct{})
		h := func(*message.Message) ([]*message.Message, error) {
			calls.Add(1)
			if down.Load() {
				return nil, errDownstream
			}
			<-release // the probe is in flight until released
			if false {
				return nil, errDownstream
			}
			return nil, nil
		}
		first := bs[0].Middleware(h)
		for i := range 10 {
			_, _ = first(message.NewMessage(fmt.Sprint("down-", i), nil))
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		// The trip happened at a's report; b and c learn at their next one.
		testkit.Advance(breaker.DefaultFleetReportEvery)
		for i, b := range bs {
			if st := b.State(); st != breaker.FleetOpen {
				t.Fatalf("replica %d: state %s one report period after the trip, want open", i, st)
			}
		}
		down.Store(false)
		calls.Store(0)
		done := make(chan struct{}, 15)
		for _, b := range bs {
			mw := b.Middleware(h)
			for range 5 {
				go func() {
					_, _ = mw(message.NewMessage("2", nil))
					done <- struct{}{}
				}()
			}
		}
		testkit.Advance(time.Second + 3*breaker.DefaultFleetReportEvery)
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d handler calls when half-open, want exactly 1 probe", n)
		}
		close(release)
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		for i := range bs {
			if st := bs[i].State(); st != breaker.FleetDraining {
				t.Fatalf("replica %d: state %s after a good probe, want draining", i, st)
			}
		}
		for range 15 {
			<-done
		}
		testkit.Advance(time.Second + 2*breaker.DefaultFleetReportEvery)
		for i := range bs {
			if st := bs[i].State(); st != breaker.FleetClosed {
				t.Fatalf("replica %d: state %s after the drain window, want closed", i, st)
			}
		}
	})
}

func TestFleetBreakerForce(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		s := fleet.NewMemStore()
		a, b := newFleet(t, s, "a", 0), newFleet(t, s, "b", 0)
		defer a.Close()
		defer b.Close()
		if err := a.SetForce(context.Background(), breaker.ForceOpen); err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		if a.State() != breaker.FleetOpen || b.State() != breaker.FleetOpen {
			t.Fatalf("states %s %s after force open, want open", a.State(), b.State())
		}
		if err := b.SetForce(context.Background(), breaker.ForceNone); err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		// Released from a closed fleet: the held backlog drains
		// (TestFleetKillSwitchReleaseDrains), then the fleet closes.
		if a.State() != breaker.FleetDraining {
			t.Fatalf("state %s after clearing the force, want draining", a.State())
		}
		testkit.Advance(time.Second + breaker.DefaultFleetReportEvery)
		if a.State() != breaker.FleetClosed {
			t.Fatalf("state %s after the drain window, want closed", a.State())
		}
	})
}

func TestFleetBreakerOnStoreError(t *testing.T) {
	for _, tt := range []struct {
		mode breaker.OnStoreError
		want breaker.FleetState
	}{
		{fleet.FailOpen, breaker.FleetClosed},
		{fleet.FailClosed, breaker.FleetOpen},
		{fleet.Local, breaker.FleetClosed},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				s := fleet.NewMemStore()
				b := newFleet(t, s, "a", tt.mode)
				defer b.Close()
				s.SetErr(errDownstream)
				testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
				if st := b.State(); st != tt.want {
					t.Errorf("state %s with the store down, want %s", st, tt.want)
				}
			})
		})
	}
}

func TestFleetBreakerStateGauge(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		s := fleet.NewMemStore()
		b, err := breaker.NewFleet(breaker.Fleet{Store: s, Key: "payments", Name: "payments", MeterProvider: mp})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.SetForce(context.Background(), breaker.ForceOpen); err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery)
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == fleet.MetricState {
					dp := m.Data.(metricdata.Gauge[int64]).DataPoints
					if len(dp) != 1 || dp[0].Value != 2 {
						t.Fatalf("state gauge %+v, want 2 (open, as levee.breaker.state)", dp)
					}
					return
				}
			}
		}
		t.Fatalf("no %s", fleet.MetricState)
	})
}

// A fleet breaker closed while its store is down no longer runs on its
// on_store_error mode: levee.fleet.degraded goes back to 0.
func TestFleetBreakerDegradedEndsOnClose(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		s := fleet.NewMemStore()
		s.SetErr(errors.New("redis down"))
		b, err := breaker.NewFleet(breaker.Fleet{Store: s, Key: "payments", Name: "payments", MeterProvider: mp})
		if err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery)
		degraded := func() int64 {
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name == fleet.MetricDegraded {
						for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
							n += dp.Value
						}
					}
				}
			}
			return n
		}
		if got := degraded(); got != 1 {
			t.Fatalf("degraded with the store down: got %d, want 1", got)
		}
		_ = b.Close()
		if got := degraded(); got != 0 {
			t.Errorf("degraded after Close: got %d, want 0", got)
		}
	})
}

// TestFleetBreakerWaitMetrics: messages a fleet breaker holds are counted
// in levee.breaker.paused and their waits in levee.breaker.wait.duration
// with their outcomes, like a local Breaker's (a fleet breaker recorded
// neither: an on-call panel of paused messages showed 0 while a forced-open
// fleet held every one).
func TestFleetBreakerWaitMetrics(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		b, err := breaker.NewFleet(breaker.Fleet{Store: fleet.NewMemStore(), Key: "payments", Name: "payments", MeterProvider: mp, MaxHold: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.SetForce(context.Background(), breaker.ForceOpen); err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery)
		mw := b.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		done := make(chan error, 4)
		for i := range 3 {
			go func() { _, err := mw(message.NewMessage(fmt.Sprint(i), nil)); done <- err }()
		}
		ctx, cancel := context.WithCancel(context.Background())
		gone := message.NewMessage("gone", nil)
		gone.SetContext(ctx)
		go func() { _, err := mw(gone); done <- err }()
		testkit.Advance(time.Second)
		paused := func() int64 {
			var n int64
			if s, ok := collect(t, reader)["levee.breaker.paused"].(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					n += dp.Value
				}
			}
			return n
		}
		if got := paused(); got != 4 {
			t.Fatalf("levee.breaker.paused with a forced-open fleet holding 4 messages: %d", got)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("the canceled message: %v", err)
		}
		if err := b.SetForce(context.Background(), breaker.ForceClosed); err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery)
		for range 3 {
			if err := <-done; err != nil {
				t.Fatalf("a held message after the force was lifted: %v", err)
			}
		}
		if got := paused(); got != 0 {
			t.Errorf("levee.breaker.paused after the fleet closed: %d, want 0", got)
		}
		h, _ := collect(t, reader)["levee.breaker.wait.duration"].(metricdata.Histogram[float64])
		byOutcome := map[string]uint64{}
		for _, dp := range h.DataPoints {
			o, _ := dp.Attributes.Value("outcome")
			name, _ := dp.Attributes.Value("breaker")
			if name.AsString() != "payments" {
				t.Errorf("a wait recorded for breaker %q, want payments", name.AsString())
			}
			byOutcome[o.AsString()] += dp.Count
		}
		if byOutcome["admitted"] != 3 || byOutcome["canceled"] != 1 {
			t.Errorf("levee.breaker.wait.duration by outcome %v, want 3 admitted and 1 canceled", byOutcome)
		}
	})
}
