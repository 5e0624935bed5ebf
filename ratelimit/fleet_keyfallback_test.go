package ratelimit

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// A message that the fleet's per-key limit puts under the fallback key is
// counted in levee.ratelimit.key.fallbacks, as the local per-key limit's
// are: a missing key, one longer than MaxKeyLen, and a new key while
// messages wait on every one of MaxKeys keys (overflow). Before, the fleet
// path counted none of them, so a fleet whose keys all shared one bucket
// showed nothing.
func TestFleetPerKeyFallbacksCounted(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		l := mustNew(t, WithName("tenants"), WithMeterProvider(mp), WithMaxWait(time.Minute),
			WithFleet(Fleet{Store: fleet.NewMemStore(), Key: "tenants", Rate: 1000,
				PerKeyRate: 1, PerKeyBurst: 1, PerKeyMetadata: "tenant", MaxKeys: 1}))
		h := l.Middleware(noop)
		msg := func(id, tenant string) *message.Message {
			m := message.NewMessage(id, nil)
			if tenant != "" {
				m.Metadata.Set("tenant", tenant)
			}
			return m
		}
		if _, err := h(msg("1", "a")); err != nil {
			t.Fatal(err)
		}
		// The next message of key a waits for its key's next token: the
		// one live key is held.
		done := make(chan error, 1)
		go func() { _, err := h(msg("2", "a")); done <- err }()
		synctest.Wait()
		for _, m := range []*message.Message{msg("3", "b"), msg("4", ""), msg("5", strings.Repeat("x", MaxKeyLen+1))} {
			if _, err := h(m); err != nil {
				t.Fatalf("message %s: %v", m.UUID, err)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		fb, ok := collect(t, reader)["levee.ratelimit.key.fallbacks"].Data.(metricdata.Sum[int64])
		if !ok {
			t.Fatal("no levee.ratelimit.key.fallbacks")
		}
		got := map[string]int64{}
		for _, p := range fb.DataPoints {
			got[attr(p.Attributes, "reason")] += p.Value
		}
		want := map[string]int64{"overflow": 1, "missing": 1, "invalid": 1}
		if len(got) != len(want) {
			t.Errorf("fallbacks by reason: got %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("fallbacks by reason: got %v, want %v", got, want)
				break
			}
		}
	})
}
