package batch_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/batch"
	"github.com/levee-dev/levee/internal/testkit"
)

// collect returns, per instrument and attribute "reason", the sum of a
// counter or the count and sum of a histogram.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]map[string][2]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string][2]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			pts := map[string][2]int64{}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					v, _ := dp.Attributes.Value(batch.AttrLeft)
					p := pts[v.AsString()]
					p[1] += dp.Value
					pts[v.AsString()] = p
				}
			case metricdata.Histogram[int64]:
				for _, dp := range d.DataPoints {
					v, _ := dp.Attributes.Value(batch.AttrReason)
					p := pts[v.AsString()]
					p[0] += int64(dp.Count)
					p[1] += dp.Sum
					pts[v.AsString()] = p
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					v, _ := dp.Attributes.Value(batch.AttrOutcome)
					p := pts[v.AsString()]
					p[0] += int64(dp.Count)
					pts[v.AsString()] = p
				}
			}
			out[m.Name] = pts
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		gate := make(chan struct{})
		s := &sink{gate: gate}
		b := mustNew(t, s.fn, batch.WithMaxSize(3), batch.WithMaxWait(10*time.Millisecond), batch.WithMeterProvider(mp))
		d := newDelivery()

		// A message that leaves an open batch, then a full batch.
		leaveCtx, leave := context.WithCancel(context.Background())
		ms := msgs("m", 4, "x")
		ms[0].SetContext(leaveCtx)
		d.send(b, ms[0])
		leave()
		synctest.Wait()
		d.send(b, ms[1:]...) // fills a batch of 3: size
		close(gate)
		d.send(b, message.NewMessage("w", nil)) // flushed by max_wait
		testkit.Advance(10 * time.Millisecond)
		d.wg.Wait()

		got := collect(t, reader)
		if p := got["levee.batch.size"]; p["size"] != [2]int64{1, 3} || p["wait"] != [2]int64{1, 1} {
			t.Errorf("levee.batch.size: got %v, want size: 1 batch of 3, wait: 1 batch of 1", p)
		}
		if p := got["levee.batch.duration"]; p["ok"][0] != 2 {
			t.Errorf("levee.batch.duration: got %v, want 2 ok batches", p)
		}
		if p := got["levee.batch.left"]; p["canceled"][1] != 1 || len(p) != 1 {
			t.Errorf("levee.batch.left: got %v, want canceled 1", p)
		}
	})
}
