package ratelimit

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// TestFleetPerKeyOutageCountsTheLimitOnce: a store outage under a per-key
// fleet limit is one fallback of one limit: levee.fleet.fallbacks counts
// 1, levee.fleet.degraded is 1 (the limits on their mode, docs/FLEET.md),
// one error line and one recovery line, however many keys the producer
// sends. Before, every key's pool reported the outage of its own: a
// producer sending a new key on every message made one error line and
// one fallback per message, and levee.fleet.degraded counted keys.
func TestFleetPerKeyOutageCountsTheLimitOnce(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		logger := watermill.NewCaptureLogger()
		store := fleet.NewMemStore()
		l := mustNew(t, WithName("payments"), WithMeterProvider(mp), WithLogger(logger),
			WithFleet(Fleet{Store: store, Key: "payments", Rate: 1000, OnStoreError: StoreFailOpen,
				PerKeyRate: 100, PerKeyMetadata: "customer_id", MaxKeys: 10}))
		h := l.Middleware(noop)
		msg := func(i int) *message.Message {
			m := message.NewMessage(fmt.Sprint(i), nil)
			m.Metadata.Set("customer_id", fmt.Sprintf("c%d", i))
			return m
		}
		if _, err := h(msg(0)); err != nil {
			t.Fatal(err)
		}
		for l.fleet.pool.TryTake() { // spend the lease: the next message asks the store
		}
		store.SetErr(errors.New("redis down"))
		for i := 1; i <= 50; i++ { // a new key on every message
			if _, err := h(msg(i)); err != nil {
				t.Fatalf("fail_open, message %d: %v", i, err)
			}
		}
		got := collect(t, reader)
		fb := got[fleet.MetricFallbacks].Data.(metricdata.Sum[int64])
		if len(fb.DataPoints) != 1 || fb.DataPoints[0].Value != 1 {
			t.Errorf("levee.fleet.fallbacks during one outage: %+v, want 1", fb.DataPoints)
		}
		if d := got[fleet.MetricDegraded].Data.(metricdata.Sum[int64]); len(d.DataPoints) != 1 || d.DataPoints[0].Value != 1 {
			t.Errorf("levee.fleet.degraded during the outage: %+v, want 1 (one limit)", d.DataPoints)
		}
		store.SetErr(nil)
		testkit.Advance(2 * fleet.DefaultPeriod)
		if _, err := h(msg(51)); err != nil {
			t.Fatal(err)
		}
		got = collect(t, reader)
		if d := got[fleet.MetricDegraded].Data.(metricdata.Sum[int64]); len(d.DataPoints) != 1 || d.DataPoints[0].Value != 0 {
			t.Errorf("levee.fleet.degraded after the recovery: %+v, want 0", d.DataPoints)
		}
		logs := logger.Captured()
		if errs := logs[watermill.ErrorLogLevel]; len(errs) != 1 {
			t.Errorf("%d error lines for one outage, want 1", len(errs))
		}
		if infos := logs[watermill.InfoLogLevel]; len(infos) != 1 {
			t.Errorf("%d recovery lines for one outage, want 1", len(infos))
		}
		_ = l.Close()
	})
}
