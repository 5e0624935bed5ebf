package breaker_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
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

func TestTelemetry(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))

		b := mustNew(t, breaker.WithName("pay"), breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(time.Second),
			breaker.WithMeterProvider(mp), breaker.WithDrain(10*time.Second, 0.1, 1), breaker.WithDrainRate(50))
		d := &downstream{}
		h := b.Middleware(d.handle)
		d.setDown(true)
		_ = call(t, h)

		// A waiting message, in a recording span.
		ctx, span := tp.Tracer("test").Start(context.Background(), "process", trace.WithSpanKind(trace.SpanKindConsumer))
		msg := newMsg()
		msg.SetContext(ctx)
		a := goCall(h, msg)
		testkit.Advance(500 * time.Millisecond)
		m := collect(t, reader)
		paused := m["levee.breaker.paused"].(metricdata.Sum[int64])
		if len(paused.DataPoints) != 1 || paused.DataPoints[0].Value != 1 {
			t.Fatalf("paused while open: got %+v, want 1", paused.DataPoints)
		}
		state := m["levee.breaker.state"].(metricdata.Gauge[int64])
		if state.DataPoints[0].Value != int64(breaker.StateOpen) {
			t.Fatalf("state: got %d, want open", state.DataPoints[0].Value)
		}
		d.setDown(false)
		testkit.Advance(time.Second)
		<-a.done
		span.End()

		m = collect(t, reader)
		if v := m["levee.breaker.paused"].(metricdata.Sum[int64]).DataPoints[0].Value; v != 0 {
			t.Fatalf("paused after recovery: got %d, want 0", v)
		}
		wait := m["levee.breaker.wait.duration"].(metricdata.Histogram[float64])
		if len(wait.DataPoints) != 1 || wait.DataPoints[0].Count != 1 || wait.DataPoints[0].Sum < 1 {
			t.Fatalf("wait duration: got %+v, want one wait of about 1s", wait.DataPoints)
		}
		if o, _ := wait.DataPoints[0].Attributes.Value("outcome"); o.AsString() != "admitted" {
			t.Fatalf("wait outcome: got %q", o.AsString())
		}
		trans := m["levee.breaker.transitions"].(metricdata.Sum[int64])
		got := map[string]int64{}
		for _, dp := range trans.DataPoints {
			f, _ := dp.Attributes.Value("from")
			to, _ := dp.Attributes.Value("to")
			got[f.AsString()+"->"+to.AsString()] = dp.Value
			if n, _ := dp.Attributes.Value(attribute.Key("breaker")); n.AsString() != "pay" {
				t.Fatalf("breaker attribute: got %q", n.AsString())
			}
		}
		if got["closed->open"] != 1 || got["open->half-open"] != 1 || got["half-open->closed"] != 1 {
			t.Fatalf("transitions: got %v", got)
		}
		progress := m["levee.breaker.drain.progress"].(metricdata.Gauge[float64])
		if v := progress.DataPoints[0].Value; v != 0.1 {
			t.Fatalf("drain progress just after recovery: got %v, want 0.1", v)
		}
		rate := m["levee.breaker.drain.rate"].(metricdata.Gauge[float64])
		if v := rate.DataPoints[0].Value; v != 5 {
			t.Fatalf("drain rate just after recovery: got %v, want 5/s", v)
		}

		spans := sr.Ended()
		if len(spans) != 1 {
			t.Fatalf("spans: got %d, want 1", len(spans))
		}
		var names []string
		for _, e := range spans[0].Events() {
			names = append(names, e.Name)
		}
		if len(names) != 2 || names[0] != "levee.breaker.wait" || names[1] != "levee.breaker.wait.done" {
			t.Fatalf("span events: got %v", names)
		}
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
}

// pausedNow reads levee.breaker.paused (0 when it has no point yet).
func pausedNow(t *testing.T, r *sdkmetric.ManualReader) int64 {
	t.Helper()
	s, ok := collect(t, r)["levee.breaker.paused"].(metricdata.Sum[int64])
	if !ok || len(s.DataPoints) == 0 {
		return 0
	}
	return s.DataPoints[0].Value
}

// TestPausedEndsAtAdmission: a message that waited for the breaker stops
// counting in levee.breaker.paused, and records its wait, when the breaker
// admits it, not when its handler returns: a long probe is not paused, its
// wait does not include its own run, and a probe that panics leaves no
// paused message behind.
func TestPausedEndsAtAdmission(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler func(d *downstream) message.HandlerFunc
	}{
		{"slow probe", func(d *downstream) message.HandlerFunc { return d.handle }},
		{"panicking probe", func(*downstream) message.HandlerFunc { return panicHandler }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				reader := sdkmetric.NewManualReader()
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
				b := mustNew(t, breaker.WithConsecutiveFailures(1), breaker.WithOpenFor(time.Second),
					breaker.WithMeterProvider(mp))
				d := &downstream{}
				d.setDown(true)
				_ = call(t, b.Middleware(d.handle))
				wantState(t, b, breaker.StateOpen)

				d.mu.Lock()
				d.down, d.delay = false, 10*time.Second
				d.mu.Unlock()
				a := goCall(middleware.Recover(b.Middleware(tt.handler(d))), newMsg())
				testkit.Advance(500 * time.Millisecond)
				if got := pausedNow(t, reader); got != 1 {
					t.Fatalf("paused while open: got %d, want 1", got)
				}
				testkit.Advance(time.Second) // half-open: the message is the probe
				if got := pausedNow(t, reader); got != 0 {
					t.Errorf("paused once admitted as the probe: got %d, want 0", got)
				}
				testkit.Advance(10 * time.Second)
				<-a.done
				if got := pausedNow(t, reader); got != 0 {
					t.Fatalf("paused after the probe returned: got %d, want 0", got)
				}
				wait := collect(t, reader)["levee.breaker.wait.duration"].(metricdata.Histogram[float64])
				if len(wait.DataPoints) != 1 || wait.DataPoints[0].Count != 1 {
					t.Fatalf("wait duration: got %+v, want one admitted wait", wait.DataPoints)
				}
				if s := wait.DataPoints[0].Sum; s < 1 || s > 2 {
					t.Fatalf("wait duration: got %vs, want the 1s open period (not the 10s probe)", s)
				}
				_ = mp.Shutdown(context.Background())
			})
		})
	}
}

// TestWaitOutcomeAtDrainMaxHold: a message that waited for the open
// breaker and then hits its max hold waiting for the drain's token is
// Nacked: its levee.breaker.wait.duration point says max_hold, not
// admitted, and it is no longer counted as paused while it waits for the
// token.
func TestWaitOutcomeAtDrainMaxHold(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		b := mustNew(t, breaker.WithMaxHold(time.Second), breaker.WithMeterProvider(mp),
			breaker.WithDrain(time.Hour, 0.1, 1), breaker.WithDrainRate(20)) // the drain admits 2/s
		h := b.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		b.ForceOpen()
		var calls []*async
		for range 3 {
			calls = append(calls, goCall(h, newMsg()))
		}
		testkit.Advance(900 * time.Millisecond)
		b.ClearForce() // a drain starts; 100ms of max hold left
		testkit.Advance(10 * time.Millisecond)
		if got := pausedNow(t, reader); got != 0 {
			t.Errorf("paused while waiting for the drain's token: got %d, want 0", got)
		}
		testkit.Advance(time.Second)
		nacked := 0
		for _, a := range calls {
			<-a.done
			if a.err != nil {
				nacked++
			}
		}
		wait := collect(t, reader)["levee.breaker.wait.duration"].(metricdata.Histogram[float64])
		got := map[string]uint64{}
		for _, dp := range wait.DataPoints {
			o, _ := dp.Attributes.Value("outcome")
			got[o.AsString()] += dp.Count
		}
		if nacked == 0 || got["max_hold"] != uint64(nacked) || got["admitted"] != uint64(len(calls)-nacked) {
			t.Errorf("wait outcomes %v for %d of %d messages Nacked at max hold in the drain", got, nacked, len(calls))
		}
		_ = mp.Shutdown(context.Background())
	})
}
