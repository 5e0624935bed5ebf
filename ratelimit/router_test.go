package ratelimit

import (
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/internal/testkit"
)

// TestRouterIntegration runs the limiter in a Watermill router over
// GoChannel, in fake time: every message is acked, at the set rate, and
// the metrics carry the handler and topic from the router.
func TestRouterIntegration(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		l := mustNew(t, WithRate(50), WithMeterProvider(mp), WithKeyMetadata("customer_id"), WithPerKey(20, 1))
		h := testkit.New(t)
		var mu sync.Mutex
		var calls []time.Time
		h.Handle("send-sms", "sms", func(msg *message.Message) error {
			mu.Lock()
			calls = append(calls, time.Now())
			mu.Unlock()
			return nil
		}, l.Middleware)
		h.Start()
		h.PublishN("sms", 100, func(i int) *message.Message {
			m := message.NewMessage(watermill.NewUUID(), nil)
			m.Metadata.Set("customer_id", []string{"a", "b", "c", "d"}[i%4])
			return m
		})
		c := h.WaitSettled(100, time.Minute)
		if c.Acked != 100 || c.Nacked != 0 {
			t.Fatalf("counts %v", c)
		}
		// 100 messages at 50/s (burst 1): 99 intervals of 20ms.
		mu.Lock()
		defer mu.Unlock()
		if got := calls[len(calls)-1].Sub(calls[0]); got != 1980*time.Millisecond {
			t.Fatalf("100 messages took %v, want 1.98s", got)
		}
		got := collect(t, reader)
		wait := got["levee.ratelimit.wait.duration"].Data.(metricdata.Histogram[float64])
		if len(wait.DataPoints) != 1 || wait.DataPoints[0].Count != 100 {
			t.Fatalf("wait: %+v", wait.DataPoints)
		}
		a := wait.DataPoints[0].Attributes
		if attr(a, "handler") != "send-sms" || attr(a, "topic") != "sms" {
			t.Fatalf("attributes %v", a.ToSlice())
		}
		_ = h.Close()
	})
}
