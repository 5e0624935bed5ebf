package ratelimit

import (
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/levee-dev/levee/internal/testkit"
)

// TestKeysGaugeFallsWithoutTraffic: keys expired only when a message
// arrived, so after the traffic stopped levee.ratelimit.keys (and Keys)
// kept counting every key seen, idle or not, for as long as nothing came:
// on-call read 6 live keys where 2 were. The gauge now drops the keys
// idle for per_key.idle and at rest when it is read; a key still
// refilling (not at rest: dropping it would forget its debt) is kept and
// counted, wherever it is in the list.
func TestKeysGaugeFallsWithoutTraffic(t *testing.T) {
	testkit.Synctest(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		l := mustNew(t, WithMeterProvider(mp), WithMode(ModeReject), WithKeyMetadata("customer_id"),
			WithPerKey(100, 1), WithKeyIdle(time.Minute),
			WithKeyOverride("slow", 1.0/3600, 1)) // refills in an hour
		h := l.Middleware(noop)
		gauge := func() int64 {
			t.Helper()
			g := collect(t, reader)["levee.ratelimit.keys"].Data.(metricdata.Gauge[int64])
			if len(g.DataPoints) != 1 {
				t.Fatalf("keys: %+v", g.DataPoints)
			}
			return g.DataPoints[0].Value
		}
		admitted(t, h, []string{"a", "slow", "b", "c", "d"}, 1)
		time.Sleep(50 * time.Second)
		admitted(t, h, []string{"e"}, 1)
		if n := gauge(); n != 6 {
			t.Fatalf("keys gauge with 6 keys used within a minute: %d", n)
		}
		time.Sleep(40 * time.Second) // a..d idle for 90 s, e for 40 s; no traffic
		if n := gauge(); n != 2 {
			t.Errorf("keys gauge 90 s after the last use of a..d (idle 1 min), no traffic since: %d, want 2 (slow, still refilling, and e)", n)
		}
		if n := l.Keys(); n != 2 {
			t.Errorf("Keys() = %d, want 2", n)
		}
		time.Sleep(time.Hour)
		if n := gauge(); n != 0 {
			t.Errorf("keys gauge an hour later: %d, want 0 (slow refilled)", n)
		}
	})
}
