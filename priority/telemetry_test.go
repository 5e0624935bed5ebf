package priority_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/priority"
)

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

func attrInt(set attribute.Set, k attribute.Key) int64 {
	v, _ := set.Value(k)
	return v.AsInt64()
}

func attrStr(set attribute.Set, k attribute.Key) string {
	v, _ := set.Value(k)
	return v.AsString()
}

func TestTelemetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer mp.Shutdown(context.Background())
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		defer tp.Shutdown(context.Background())

		s := newScheduler(t, priority.WithName("shared"), priority.WithSlots(1), priority.WithMaxWaiting(1),
			priority.WithAging(time.Second), priority.WithMeterProvider(mp))
		release := make(chan struct{})
		h := s.Middleware(func(m *message.Message) ([]*message.Message, error) {
			if m.UUID == "holder" {
				<-release
			}
			return nil, nil
		})
		send := func(id, p string, errs chan<- error) {
			ctx, span := tp.Tracer("test").Start(context.Background(), id)
			m := msgWith(id, map[string]string{levee.KeyPriority: p})
			m.SetContext(ctx)
			go func() {
				_, err := h(m)
				span.End()
				errs <- err
			}()
			synctest.Wait()
		}
		errs := make(chan error, 4)
		send("holder", "0", errs)
		send("waiter", "7", errs)
		send("garbage", "x", errs) // priority 0, queue full: shed
		if err := <-errs; !errors.Is(err, priority.ErrQueueFull) {
			t.Fatalf("garbage: got %v, want ErrQueueFull", err)
		}
		got := collect(t, reader)
		depth := got["levee.priority.queue.depth"].(metricdata.Gauge[int64])
		for _, dp := range depth.DataPoints {
			want := int64(0)
			if attrInt(dp.Attributes, priority.AttrPriority) == 7 {
				want = 1
			}
			if dp.Value != want || attrStr(dp.Attributes, priority.AttrScheduler) != "shared" {
				t.Errorf("queue depth %v: got %d, want %d", dp.Attributes.ToSlice(), dp.Value, want)
			}
		}
		if n := len(depth.DataPoints); n != priority.Levels {
			t.Errorf("queue depth points: got %d, want %d", n, priority.Levels)
		}
		inUse := got["levee.priority.slots.in_use"].(metricdata.Gauge[int64])
		if inUse.DataPoints[0].Value != 1 {
			t.Errorf("slots in use: got %d, want 1", inUse.DataPoints[0].Value)
		}
		time.Sleep(500 * time.Millisecond)
		close(release)
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		got = collect(t, reader)
		shed := got["levee.priority.shed"].(metricdata.Sum[int64])
		if len(shed.DataPoints) != 1 || shed.DataPoints[0].Value != 1 ||
			attrStr(shed.DataPoints[0].Attributes, priority.AttrReason) != priority.ReasonQueueFull ||
			attrInt(shed.DataPoints[0].Attributes, priority.AttrPriority) != 0 {
			t.Errorf("shed: got %+v, want one queue_full at priority 0", shed.DataPoints)
		}
		invalid := got["levee.priority.invalid"].(metricdata.Sum[int64])
		if len(invalid.DataPoints) != 1 || invalid.DataPoints[0].Value != 1 {
			t.Errorf("invalid: got %+v, want 1", invalid.DataPoints)
		}
		wait := got["levee.priority.wait.duration"].(metricdata.Histogram[float64])
		for _, dp := range wait.DataPoints {
			switch attrInt(dp.Attributes, priority.AttrPriority) {
			case 7:
				if dp.Count != 1 || dp.Sum != 0.5 {
					t.Errorf("wait p7: got count=%d sum=%v, want 1 and 0.5", dp.Count, dp.Sum)
				}
			case 0:
				if dp.Count != 1 || dp.Sum != 0 {
					t.Errorf("wait p0: got count=%d sum=%v, want 1 and 0", dp.Count, dp.Sum)
				}
			}
		}
		events := map[string][]attribute.KeyValue{}
		for _, sp := range sr.Ended() {
			for _, e := range sp.Events() {
				events[sp.Name()+"/"+e.Name] = e.Attributes
			}
		}
		ev, ok := events["waiter/"+priority.EventAcquired]
		if !ok {
			t.Fatalf("no acquired event on waiter's span: %v", events)
		}
		if got := attribute.NewSet(ev...); attrInt(got, priority.AttrEventPriority) != 7 {
			t.Errorf("event priority: got %v", ev)
		} else if v, _ := got.Value(priority.AttrEventEffective); v.AsFloat64() != 7.5 {
			t.Errorf("effective priority: got %v, want 7.5", v.AsFloat64())
		}
		if _, ok := events["garbage/"+priority.EventRejected]; !ok {
			t.Errorf("no rejected event on garbage's span: %v", events)
		}
	})
}
