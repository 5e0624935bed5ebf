package bench

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/ratelimit"
)

// BenchmarkFleetLimiterPerMessage is the per-message cost of a fleet limit
// against a local one, in the same run: "local" is a Limiter with a local
// rate (never waiting: 1e9/s), "fleet" the same Limiter with a fleet limit
// as well (an in-process store; the store is never on the message path, so
// the Redis store costs the same, see BenchmarkFleetVsRedisRate).
// Target: fleet <= local + 20 ns, 0 allocs.
func BenchmarkFleetLimiterPerMessage(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []ratelimit.Option
	}{
		{"local", nil},
		{"fleet", []ratelimit.Option{ratelimit.WithFleet(ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "bench", Rate: 1e9})}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l, err := ratelimit.New(append([]ratelimit.Option{ratelimit.WithRate(1e9), ratelimit.WithBurst(1 << 20)}, tc.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
			msg := message.NewMessage("1", nil)
			_, _ = h(msg) // the first lease
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := h(msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
