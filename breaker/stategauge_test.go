package breaker_test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// documentedEnum reads the values docs/TELEMETRY.md gives an enum gauge
// in its instrument row ("0 closed, 1 half-open, …").
func documentedEnum(t *testing.T, instrument string) map[string]int64 {
	t.Helper()
	raw, err := os.ReadFile("../docs/TELEMETRY.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(instrument) + "`.*$").Find(raw)
	if row == nil {
		t.Fatalf("docs/TELEMETRY.md has no row for %s", instrument)
	}
	out := map[string]int64{}
	for _, m := range regexp.MustCompile(`\b([0-9]) (closed|half-open|open|draining)\b`).FindAllSubmatch(row, -1) {
		out[string(m[2])] = int64(m[1][0] - '0')
	}
	return out
}

// gaugeValue reads the one point of an int64 gauge.
func gaugeValue(t *testing.T, r *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	g, ok := collect(t, r)[name].(metricdata.Gauge[int64])
	if !ok || len(g.DataPoints) != 1 {
		t.Fatalf("%s: got %+v, want one gauge point", name, g)
	}
	return g.DataPoints[0].Value
}

// TestStateGaugesShareOneEnum: a Breaker and a FleetBreaker taken through
// closed, open, half-open, draining and closed again report each state
// with the same number, the one docs/TELEMETRY.md gives both gauges, so a
// dashboard or a rule over either reads it right. The fleet gauge used the
// store's numbering (1 open, 2 half-open) and a local breaker reported
// closed while its drain held throughput at 10%.
func TestStateGaugesShareOneEnum(t *testing.T) {
	want := documentedEnum(t, "levee.breaker.state")
	if fl := documentedEnum(t, fleet.MetricState); len(want) != 4 || len(fl) != 4 {
		t.Fatalf("docs/TELEMETRY.md: levee.breaker.state %v, %s %v; want the four states on each", want, fleet.MetricState, fl)
	} else {
		for s, v := range want {
			if fl[s] != v {
				t.Fatalf("docs/TELEMETRY.md: %s is %d on levee.breaker.state and %d on %s", s, v, fl[s], fleet.MetricState)
			}
		}
	}
	steps := []string{"closed", "open", "half-open", "draining", "closed"}
	local := localStates(t)
	fleetGot := fleetStates(t, false)
	fallback := fleetStates(t, true)
	for i, s := range steps {
		if local[i] != want[s] || fleetGot[i] != want[s] || fallback[i] != want[s] {
			t.Errorf("step %d (%s): levee.breaker.state %d, %s %d (%d on the local fallback while the store is down); want %d for each",
				i, s, local[i], fleet.MetricState, fleetGot[i], fallback[i], want[s])
		}
	}
}

// localStates takes a Breaker through the steps of
// TestStateGaugesShareOneEnum and returns its gauge at each.
func localStates(t *testing.T) []int64 {
	var got []int64
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(time.Second),
			breaker.WithDrain(10*time.Second, 0.1, 1), breaker.WithDrainRate(50), breaker.WithMeterProvider(mp))
		d := &downstream{}
		h := b.Middleware(d.handle)
		read := func() { got = append(got, gaugeValue(t, reader, "levee.breaker.state")) }
		read()
		d.setDown(true)
		_ = call(t, h)
		read()
		testkit.Advance(time.Second + time.Millisecond)
		read()
		d.setDown(false)
		if err := call(t, h); err != nil {
			t.Fatal(err)
		}
		read()
		testkit.Advance(11 * time.Second)
		read()
	})
	return got
}

// fleetStates takes a FleetBreaker through the same steps: by its store,
// or, with storeDown, by its on_store_error local fallback (the store
// fails from its first report on).
func fleetStates(t *testing.T, storeDown bool) []int64 {
	var got []int64
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		store := fleet.NewMemStore()
		if storeDown {
			store.SetErr(errors.New("store down"))
		}
		b, err := breaker.NewFleet(breaker.Fleet{Store: store, Key: "payments", Name: "payments",
			MinRequests: 1, Window: time.Second, OpenFor: time.Second, DrainWindow: 10 * time.Second, DrainRate: 50,
			OnStoreError: fleet.Local, MeterProvider: mp})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = b.Close() }()
		d := &downstream{}
		h := b.Middleware(d.handle)
		read := func() { got = append(got, gaugeValue(t, reader, fleet.MetricState)) }
		read()
		d.setDown(true)
		_, _ = h(message.NewMessage("down", nil))
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		read()
		testkit.Advance(time.Second + breaker.DefaultFleetReportEvery)
		read()
		d.setDown(false)
		if _, err := h(message.NewMessage("probe", nil)); err != nil {
			t.Fatal(err)
		}
		testkit.Advance(breaker.DefaultFleetReportEvery + time.Millisecond)
		read()
		testkit.Advance(11 * time.Second)
		read()
		if d, ok := collect(t, reader)[fleet.MetricDegraded].(metricdata.Sum[int64]); storeDown && (!ok || d.DataPoints[0].Value != 1) {
			t.Fatalf("%s with the store down: got %+v, want 1 (the steps ran on the local fallback)", fleet.MetricDegraded, d)
		}
	})
	return got
}

// TestQuietHalfOpenPausesNothing pins what LeveeBreakerOpen
// (docs/alerts/levee-breaker.rules.yml) relies on: a breaker whose open
// period passed with no message reports half-open (1) for as long as no
// message comes, while levee.breaker.paused is 0 and the next message is
// admitted at once, as the probe. A half-open state alone is not a
// paused breaker; the rule pages on it only with messages waiting.
func TestQuietHalfOpenPausesNothing(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(30*time.Second),
			breaker.WithMaxHold(time.Minute), breaker.WithMeterProvider(mp))
		d := &downstream{}
		h := b.Middleware(d.handle)
		d.setDown(true)
		_ = call(t, h)
		a := goCall(h, newMsg()) // waits while open: levee.breaker.paused has a point
		testkit.Advance(10 * time.Second)
		if got := pausedNow(t, reader); got != 1 {
			t.Fatalf("paused while open: got %d, want 1", got)
		}
		d.setDown(false)
		testkit.Advance(21 * time.Second) // half-open: it is the probe, and closes the breaker
		<-a.done
		d.setDown(true)
		_ = call(t, h) // open again; then nothing comes for an hour
		testkit.Advance(time.Hour)
		if got := gaugeValue(t, reader, "levee.breaker.state"); got != 1 {
			t.Fatalf("levee.breaker.state after an hour without messages: got %d, want 1 (half-open)", got)
		}
		if got := pausedNow(t, reader); got != 0 {
			t.Fatalf("levee.breaker.paused after an hour without messages: got %d, want 0", got)
		}
		d.setDown(false)
		waits := func() uint64 {
			var n uint64
			for _, dp := range collect(t, reader)["levee.breaker.wait.duration"].(metricdata.Histogram[float64]).DataPoints {
				n += dp.Count
			}
			return n
		}
		before := waits()
		if err := call(t, h); err != nil {
			t.Fatalf("the next message: %v, want it admitted as the probe", err)
		}
		if got := waits(); got != before {
			t.Errorf("the next message waited (%d breaker waits, want %d): a quiet half-open breaker held it", got, before)
		}
		wantState(t, b, breaker.StateClosed)
	})
}
