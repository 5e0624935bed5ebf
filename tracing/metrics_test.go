package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/telemetry"
	"github.com/levee-dev/levee/tracing"
)

func TestHandlerMetricsOutcomes(t *testing.T) {
	ok := func(*message.Message) ([]*message.Message, error) { return nil, nil }
	fail := func(err error) message.HandlerFunc {
		return func(*message.Message) ([]*message.Message, error) { return nil, err }
	}
	dead := func(class string) message.HandlerFunc {
		return func(m *message.Message) ([]*message.Message, error) {
			telemetry.MarkDeadLettered(m.Context(), class, nil)
			return nil, nil
		}
	}
	outcome := func(o, class string) []attribute.KeyValue {
		kv := []attribute.KeyValue{telemetry.AttrHandler.String(""), telemetry.AttrTopic.String(""), telemetry.AttrOutcome.String(o)}
		if class != "" {
			kv = append(kv, telemetry.AttrClass.String(class))
		}
		return kv
	}
	tests := []struct {
		name     string
		handler  message.HandlerFunc
		withSpan bool // the tracing middleware sits outside (shares the Outcome)
		want     []attribute.KeyValue
	}{
		{"acked", ok, false, outcome("acked", "")},
		{"nacked transient", fail(errors.New("x")), false, outcome("nacked", "transient")},
		{"nacked validation", fail(classErr{"validation"}), false, outcome("nacked", "validation")},
		{"nacked unknown class", fail(classErr{"weird"}), false, outcome("nacked", "other")},
		{"dead-lettered exhausted", dead("exhausted"), false, outcome("dead_lettered", "exhausted")},
		{"dead-lettered under tracing", dead("panic"), true, outcome("dead_lettered", "panic")},
		// Handed back at shutdown (the message context ended while it was
		// held or running): not a failure, so no class.
		{"canceled", fail(context.Canceled), false, outcome("canceled", "")},
		{"canceled in a dlq backoff", fail(fmt.Errorf("levee/dlq: retry wait interrupted: %w",
			errors.Join(errors.New("down"), context.Canceled))), false, outcome("canceled", "")},
		{"canceled in a deferral's wait", fail(errors.Join(levee.DeferralSentinel("limited"), context.Canceled)), false, outcome("canceled", "")},
		{"deferred", fail(levee.DeferralSentinel("limited")), false, outcome("deferred", "")},
		{"timed out", fail(context.DeadlineExceeded), false, outcome("nacked", "transient")},
		// Nacked by the handler itself, which returned nil: the router's
		// Ack does nothing and the broker redelivers it.
		{"nacked by the handler", func(m *message.Message) ([]*message.Message, error) { m.Nack(); return nil, nil }, false, outcome("nacked", "transient")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorded(t)
			m := r.metrics(t)
			h := m.Middleware(tt.handler)
			if tt.withSpan {
				h = r.tracer(t).Middleware(h)
			}
			msg := message.NewMessage("u", nil)
			before := msg.Context()
			_, _ = h(msg)
			if msg.Context() != before {
				t.Errorf("message context not restored")
			}
			if got := r.sum(t, tracing.MetricHandlerMessages, tt.want...); got != 1 {
				t.Errorf("%s%v = %d, want 1", tracing.MetricHandlerMessages, tt.want, got)
			}
			hist, okh := r.collect(t, tracing.MetricHandlerDuration).(metricdata.Histogram[float64])
			if !okh || len(hist.DataPoints) != 1 {
				t.Fatalf("%s: got %v, want one histogram data point", tracing.MetricHandlerDuration, r.collect(t, tracing.MetricHandlerDuration))
			}
			want := attribute.NewSet(tt.want...)
			if dp := hist.DataPoints[0]; dp.Count != 1 || !dp.Attributes.Equals(&want) {
				t.Errorf("duration point count=%d attrs=%v, want 1 with %v", dp.Count, dp.Attributes.ToSlice(), tt.want)
			}
		})
	}
}

func TestHandlerDurationMeasured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorded(t)
		m := r.metrics(t)
		h := m.Middleware(func(*message.Message) ([]*message.Message, error) {
			time.Sleep(300 * time.Millisecond) // fake time
			return nil, nil
		})
		_, _ = h(message.NewMessage("u", nil))
		hist := r.collect(t, tracing.MetricHandlerDuration).(metricdata.Histogram[float64])
		if got := hist.DataPoints[0].Sum; got != 0.3 {
			t.Errorf("duration sum = %v s, want 0.3", got)
		}
	})
}

func TestMetricsPerHandlerAttrsAreReused(t *testing.T) {
	r := newRecorded(t)
	m := r.metrics(t)
	h := m.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	msg := message.NewMessage("u", nil)
	_, _ = h(msg) // first message resolves the attributes
	allocs := testing.AllocsPerRun(200, func() { _, _ = h(msg) })
	// WithOutcome's context value and recorder are the only allocations
	// when metrics run without tracing.
	if allocs > 2 {
		t.Errorf("allocs per message = %v, want <= 2", allocs)
	}
}

// TestHandlerMetricsCountPanics: a stack without a recover slot or a dlq
// lets a handler's panic reach Watermill's router, which recovers it and
// Nacks the message. The delivery is counted as nacked with class panic,
// its duration recorded, and the panic goes on with its value; before,
// it was in neither instrument, so a handler that panicked on every
// message (tripping its breaker) showed no failure at all.
func TestHandlerMetricsCountPanics(t *testing.T) {
	r := newRecorded(t)
	h := r.metrics(t).Middleware(func(*message.Message) ([]*message.Message, error) { panic("kaput") })
	msg := message.NewMessage("u", nil)
	before := msg.Context()
	func() {
		defer func() {
			if v := recover(); v != "kaput" { // as Watermill's router does
				t.Errorf("recovered %v, want the handler's panic", v)
			}
		}()
		_, _ = h(msg)
	}()
	if msg.Context() != before {
		t.Errorf("message context not restored")
	}
	want := []attribute.KeyValue{telemetry.AttrHandler.String(""), telemetry.AttrTopic.String(""),
		telemetry.AttrOutcome.String("nacked"), telemetry.AttrClass.String("panic")}
	if got := r.sum(t, tracing.MetricHandlerMessages, want...); got != 1 {
		t.Errorf("%s%v = %d, want 1", tracing.MetricHandlerMessages, want, got)
	}
	hist, ok := r.collect(t, tracing.MetricHandlerDuration).(metricdata.Histogram[float64])
	if !ok || len(hist.DataPoints) != 1 || hist.DataPoints[0].Count != 1 {
		t.Fatalf("%s: got %v, want one point", tracing.MetricHandlerDuration, r.collect(t, tracing.MetricHandlerDuration))
	}
}
