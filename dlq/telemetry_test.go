package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/testkit"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestMetricsAndSpanEvents(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		pub := newRecPublisher()
		r, err := dlq.New(pub, dlq.WithTopic(testDLQ), dlq.WithMeterProvider(mp), dlq.WithMaxAttempts(3),
			dlq.WithJitter(func() float64 { return 1 }))
		if err != nil {
			t.Fatal(err)
		}
		h := r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			if string(msg.Payload) == "perm" {
				return nil, dlq.Permanent(errBoom)
			}
			return nil, errBoom
		})
		ctx, span := tp.Tracer("t").Start(context.Background(), "process")
		if _, err := h(message.NewMessageWithContext(ctx, "a", []byte("transient"))); err != nil {
			t.Fatal(err)
		}
		span.End()
		if _, err := h(message.NewMessage("b", []byte("perm"))); err != nil {
			t.Fatal(err)
		}
		pub.setFail(errors.New("down"))
		if _, err := h(message.NewMessage("c", []byte("perm"))); err == nil {
			t.Fatal("got nil, want publish error")
		}

		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				sum, ok := m.Data.(metricdata.Sum[int64])
				if !ok {
					t.Fatalf("%s: got %T, want Sum[int64]", m.Name, m.Data)
				}
				for _, dp := range sum.DataPoints {
					key := m.Name
					if c, ok := dp.Attributes.Value(attribute.Key("class")); ok {
						key += "/" + c.AsString()
					}
					got[key] += dp.Value
				}
			}
		}
		want := map[string]int64{
			"levee.dlq.dead_letters/exhausted": 1,
			"levee.dlq.dead_letters/permanent": 1,
			"levee.dlq.retries":                2,
			"levee.dlq.publish_failures":       1,
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: got %d, want %d (all %v)", k, got[k], v, got)
			}
		}

		spans := rec.Ended()
		if len(spans) != 1 {
			t.Fatalf("spans: got %d, want 1", len(spans))
		}
		var retries []float64
		for _, ev := range spans[0].Events() {
			if ev.Name != "levee.retry" {
				continue
			}
			var attempt int64
			var delay float64
			for _, a := range ev.Attributes {
				switch a.Key {
				case "levee.retry.attempt":
					attempt = a.Value.AsInt64()
				case "levee.retry.delay":
					delay = a.Value.AsFloat64()
				}
			}
			retries = append(retries, delay)
			if attempt != int64(len(retries)) {
				t.Errorf("event attempt: got %d, want %d", attempt, len(retries))
			}
		}
		if len(retries) != 2 || retries[0] != 0.1 || retries[1] != 0.2 {
			t.Errorf("levee.retry delays: got %v, want [0.1 0.2] (seconds)", retries)
		}
	})
}

// TestEarlyRedeliveryIsADeferral: a redelivery that comes before its
// deferred retry (or its deferral's RetryAfter) is due waits max hold and
// is Nacked again without a handler attempt. That Nack is a deferral (the
// metrics slot reports it as deferred, not as a nacked failure of class
// transient) and is counted, like the Nacks before it: in
// levee.dlq.retries_deferred after a failed attempt, in levee.dlq.deferrals
// after a deferral.
func TestEarlyRedeliveryIsADeferral(t *testing.T) {
	for _, tt := range []struct {
		name    string
		err     error
		counter string
		// the three deliveries: attempt 1 (its retry or deferral due in
		// 1s), an early redelivery (waits 0.5s, no attempt), attempt 2
		deferral []bool
	}{
		{"failed attempt", errBoom, "levee.dlq.retries_deferred", []bool{false, true, false}},
		{"deferral", levee.Defer(time.Second, errBoom), "levee.dlq.deferrals", []bool{true, true, true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				reader := sdkmetric.NewManualReader()
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
				b := dlq.Backoff{Initial: time.Second, Max: 8 * time.Second, Multiplier: 2, MaxAttempts: 5}
				r, err := dlq.New(newRecPublisher(), dlq.WithTopic(testDLQ), dlq.WithBackoff(b), dlq.WithMaxHold(500*time.Millisecond),
					dlq.WithJitter(func() float64 { return 1 }), dlq.WithMeterProvider(mp))
				if err != nil {
					t.Fatal(err)
				}
				calls := 0
				h := r.Middleware(failingHandler(&calls, -1, tt.err))
				msg := message.NewMessage("held", nil)
				for i, want := range tt.deferral {
					_, err := h(msg)
					if got := levee.IsDeferral(err); got != want {
						t.Errorf("delivery %d (%v): IsDeferral got %v, want %v", i+1, err, got, want)
					}
				}
				if calls != 2 {
					t.Fatalf("got %d calls, want 2", calls)
				}
				if got := sumCounter(t, reader, tt.counter); got != 3 {
					t.Errorf("%s: got %d, want 3 (every deferred Nack)", tt.counter, got)
				}
			})
		})
	}
}

func sumCounter(t *testing.T, reader *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}

// TestDeferralEventOnlyWhenWaitedInProcess: a deferral the dlq waits in
// process (its RetryAfter within the max hold) adds a levee.deferral event
// with the wait to the span, so a trace explains the time; one it Nacks
// for a redelivery (past the max hold) adds none, and neither adds a
// levee.retry event (no attempt failed).
func TestDeferralEventOnlyWhenWaitedInProcess(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		r, err := dlq.New(newRecPublisher(), dlq.WithTopic(testDLQ), dlq.WithMaxHold(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		calls := map[string]int{}
		h := r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
			calls[msg.UUID]++
			if calls[msg.UUID] > 1 {
				return nil, nil
			}
			after := 300 * time.Millisecond
			if msg.UUID == "long" {
				after = time.Minute
			}
			return nil, levee.Defer(after, errors.New("downstream says 429"))
		})
		for _, id := range []string{"short", "long"} {
			ctx, span := tp.Tracer("t").Start(context.Background(), id)
			_, _ = h(message.NewMessageWithContext(ctx, id, nil))
			span.End()
		}
		for _, s := range rec.Ended() {
			var names []string
			var delay float64
			for _, e := range s.Events() {
				names = append(names, e.Name)
				for _, a := range e.Attributes {
					if a.Key == "levee.deferral.delay" {
						delay = a.Value.AsFloat64()
					}
				}
			}
			want := map[string]string{"short": "[levee.deferral]", "long": "[]"}[s.Name()]
			if got := fmt.Sprint(names); got != want {
				t.Errorf("%s: events %s, want %s", s.Name(), got, want)
			}
			if s.Name() == "short" && delay != 0.3 {
				t.Errorf("short: levee.deferral.delay %v, want 0.3", delay)
			}
		}
	})
}
