//go:build integration

package fleetredis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/ratelimit"
)

// TestFleetPerKeyLongKeyOnRedis: a per-key fleet limit keeps a key of up
// to ratelimit.MaxKeyLen bytes in Redis, under a limit key of up to
// fleetredis.MaxKeyLen bytes. Before, the store refused any key over 200
// bytes, the limit's key and ":k:" included: a customer id of 190 bytes
// or more (which ratelimit accepts up to 256) failed every lease, so the
// key ran on on_store_error (with fail_closed, none of its messages ran),
// and each such key counted a store fallback, though Redis was up.
func TestFleetPerKeyLongKeyOnRedis(t *testing.T) {
	url, prefix := sharedRedis(t)
	store, err := fleetredis.Open(context.Background(), url, prefix, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	for _, limitKey := range []string{"payments", strings.Repeat("p", fleetredis.MaxKeyLen)} {
		l, err := ratelimit.New(ratelimit.WithName("payments"), ratelimit.WithMeterProvider(mp), ratelimit.WithMaxWait(5*time.Second),
			ratelimit.WithFleet(ratelimit.Fleet{Store: store, Key: limitKey, Rate: 1000, StoreTimeout: time.Second,
				OnStoreError: ratelimit.StoreFailClosed, PerKeyRate: 100, PerKeyMetadata: "customer_id"}))
		if err != nil {
			t.Fatal(err)
		}
		h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		for _, n := range []int{1, 189, 190, ratelimit.MaxKeyLen} {
			m := message.NewMessage("1", nil)
			m.Metadata.Set("customer_id", strings.Repeat("c", n))
			if _, err := h(m); err != nil {
				t.Errorf("limit key of %d bytes, customer_id of %d bytes: %v, want it run", len(limitKey), n, err)
			}
		}
		_ = l.Close()
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "levee.fleet.fallbacks" {
				for _, p := range s.DataPoints {
					if p.Value != 0 {
						t.Errorf("levee.fleet.fallbacks %d with Redis up, want 0", p.Value)
					}
				}
			}
		}
	}
}
