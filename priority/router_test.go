package priority_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/internal/testkit"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
)

// TestRouterVIPOvertakesBulk runs two handlers on a GoChannel router (which
// delivers concurrently, so many messages wait at once) sharing one slot:
// while it is busy, bulk and VIP orders queue up, and every VIP order runs
// before any bulk order that was waiting. Nothing is lost or Nacked.
func TestRouterVIPOvertakesBulk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer mp.Shutdown(context.Background())
		s := newScheduler(t, priority.WithName("shared"), priority.WithSlots(1), priority.WithAging(time.Hour),
			priority.WithMeterProvider(mp))
		const bulkN, vipN = 12, 4

		h := testkit.New(t)
		var mu sync.Mutex
		var order []string
		handler := func(msg *message.Message) error {
			if msg.UUID == "blocker" {
				// Hold the slot until every other order waits for it.
				for s.Stats().Waiting < bulkN+vipN {
					time.Sleep(time.Millisecond)
				}
			}
			time.Sleep(5 * time.Millisecond) // the saturated downstream
			mu.Lock()
			order = append(order, msg.UUID)
			mu.Unlock()
			return nil
		}
		h.Handle("bulk-orders", "orders.bulk", handler, middleware.Recover, s.Middleware)
		vipMW, err := s.HandlerMiddleware(priority.WithHandlerPriority(5))
		if err != nil {
			t.Fatal(err)
		}
		h.Handle("vip-orders", "orders.vip", handler, middleware.Recover, vipMW)
		h.Start()

		h.Publish("orders.bulk", message.NewMessage("blocker", nil))
		synctest.Wait()
		for i := range bulkN {
			h.Publish("orders.bulk", message.NewMessage(fmt.Sprint("bulk", i), nil))
			if i%3 == 2 {
				vip := message.NewMessage(fmt.Sprint("vip", i/3), nil)
				priority.Set(vip, 9) // overrides the handler's default 5
				h.Publish("orders.vip", vip)
			}
		}
		c := h.WaitSettled(1+bulkN+vipN, time.Minute)
		if c.Nacked != 0 || c.Acked != 1+bulkN+vipN {
			t.Fatalf("counts: %s, want every order acked once", c)
		}
		mu.Lock()
		got := append([]string(nil), order...)
		mu.Unlock()
		if got[0] != "blocker" {
			t.Fatalf("first: got %s, want blocker", got[0])
		}
		for i, id := range got[1:] {
			if isVIP := strings.HasPrefix(id, "vip"); isVIP != (i < vipN) {
				t.Fatalf("order: got %v, want the %d VIP orders right after the blocker", got, vipN)
			}
		}
		st := s.Stats()
		if st.Levels[9].Granted != vipN || st.Levels[0].Granted != bulkN+1 {
			t.Errorf("granted: got vip=%d bulk=%d, want %d and %d", st.Levels[9].Granted, st.Levels[0].Granted, vipN, bulkN+1)
		}
		if p50 := st.Levels[9].Wait.Quantile(0.5); p50 <= 0 {
			t.Errorf("vip p50 wait: got %s, want > 0", p50)
		}

		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		handlers := map[string]uint64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "levee.priority.wait.duration" {
					continue
				}
				for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
					handlers[attrStr(dp.Attributes, "handler")+"/"+attrStr(dp.Attributes, "topic")] += dp.Count
				}
			}
		}
		if handlers["vip-orders/orders.vip"] != vipN || handlers["bulk-orders/orders.bulk"] != bulkN+1 {
			t.Errorf("wait histogram counts per handler/topic: got %v", handlers)
		}
	})
}

// TestRouterShutdownWithThousandsWaiting stops the router while thousands
// of messages wait for a slot: every waiter returns promptly, no message
// is acked without having been processed, and nothing leaks.
func TestRouterShutdownWithThousandsWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 3000
		s := newScheduler(t, priority.WithSlots(2))
		h := testkit.New(t)
		var mu sync.Mutex
		processed := map[string]bool{}
		h.Handle("bulk", "orders", func(msg *message.Message) error {
			time.Sleep(10 * time.Millisecond)
			mu.Lock()
			processed[msg.UUID] = true
			mu.Unlock()
			return nil
		}, s.Middleware)
		h.Start()
		h.PublishN("orders", n, nil)
		for s.Stats().Waiting < n-10 {
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		if err := h.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("shutdown took %s of fake time, want well under 1s", d)
		}
		c := h.Counts()
		mu.Lock()
		defer mu.Unlock()
		if c.Acked != len(processed) {
			t.Errorf("acked %d, processed %d: want equal (nothing acked unprocessed)", c.Acked, len(processed))
		}
		if c.Acked >= n {
			t.Errorf("acked %d of %d: the shutdown should have cut the backlog", c.Acked, n)
		}
		if st := s.Stats(); st.Waiting != 0 || st.InUse != 0 {
			t.Errorf("after shutdown: waiting=%d inUse=%d, want 0 and 0", st.Waiting, st.InUse)
		}
	})
}

// TestTwoRetriersShareOneScheduler: the slots bound the concurrency of two
// independent routers together.
func TestTwoRetriersShareOneScheduler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const slots, perRouter = 3, 40
		s := newScheduler(t, priority.WithSlots(slots))
		var mu sync.Mutex
		running, peak := 0, 0
		work := func(*message.Message) error {
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			mu.Lock()
			running--
			mu.Unlock()
			return nil
		}
		a, b := testkit.New(t), testkit.New(t)
		a.Handle("a", "topic", work, s.Middleware)
		b.Handle("b", "topic", work, s.Middleware)
		a.Start()
		b.Start()
		a.PublishN("topic", perRouter, nil)
		b.PublishN("topic", perRouter, nil)
		ca, cb := a.WaitSettled(perRouter, time.Minute), b.WaitSettled(perRouter, time.Minute)
		if ca.Nacked+cb.Nacked != 0 {
			t.Errorf("nacked: %s / %s, want none", ca, cb)
		}
		if peak != slots {
			t.Errorf("peak concurrency across both routers: got %d, want %d", peak, slots)
		}
		if st := s.Stats(); st.Levels[0].Granted != 2*perRouter {
			t.Errorf("granted: got %d, want %d", st.Levels[0].Granted, 2*perRouter)
		}
	})
}
