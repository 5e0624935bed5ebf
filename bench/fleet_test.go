package bench

import (
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/ratelimit"
)

// BenchmarkFleetLimiterPerMessage is the per-message cost of a fleet limit
// against a local one, in the same run: "local" is a Limiter with a local
// rate, "fleet" one with a fleet limit instead, "fleet+local" one with
// both (they compose), "fleet_per_key" a fleet limit with a per-key fleet
// limit (one key). Rates are never reached (1e9/s), so this is the
// admission cost alone. The store is in-process: it is never on the
// message path, so the Redis store costs the same (see
// BenchmarkFleetVsRedisRate). Target: fleet <= local + 20 ns, 0 allocs.
func BenchmarkFleetLimiterPerMessage(b *testing.B) {
	fleetOpt := func() ratelimit.Option {
		return ratelimit.WithFleet(ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "bench", Rate: 1e9})
	}
	localOpts := func() []ratelimit.Option {
		return []ratelimit.Option{ratelimit.WithRate(1e9), ratelimit.WithBurst(1 << 20)}
	}
	for _, tc := range []struct {
		name string
		opts func() []ratelimit.Option
	}{
		{"local", localOpts},
		{"fleet", func() []ratelimit.Option { return []ratelimit.Option{fleetOpt()} }},
		{"fleet+local", func() []ratelimit.Option { return append(localOpts(), fleetOpt()) }},
		{"fleet_per_key", func() []ratelimit.Option {
			return []ratelimit.Option{ratelimit.WithFleet(ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "bench", Rate: 1e9,
				PerKeyRate: 1e9, PerKeyMetadata: "tenant"})}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l, err := ratelimit.New(tc.opts()...)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
			msg := message.NewMessage("1", nil)
			msg.Metadata.Set("tenant", "t1")
			_, _ = h(msg) // the first lease
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := h(msg); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := h(msg); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}

// BenchmarkFleetPerKeyChurn is the per-message cost of a per-key fleet
// limit under key churn: max_keys 10,000 keys live, and every message
// brings a key the replica does not hold (the keys cycle through twice
// max_keys), so each one evicts a key and starts a Pool whose first
// token waits for a lease from the (in-process) store. Rates are never
// reached.
func BenchmarkFleetPerKeyChurn(b *testing.B) {
	const maxKeys = 10000
	l, err := ratelimit.New(ratelimit.WithFleet(ratelimit.Fleet{Store: fleet.NewMemStore(), Key: "bench", Rate: 1e9,
		PerKeyRate: 1e9, PerKeyMetadata: "tenant", MaxKeys: maxKeys}))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
	keys := make([]string, 2*maxKeys)
	for i := range keys {
		keys[i] = "t" + strconv.Itoa(i)
	}
	msg := message.NewMessage("1", nil)
	send := func(key string) {
		msg.Metadata.Set("tenant", key)
		if _, err := h(msg); err != nil {
			b.Fatal(err)
		}
	}
	for _, key := range keys[:maxKeys] {
		send(key)
	}
	b.ReportAllocs()
	i := maxKeys
	for b.Loop() {
		send(keys[i%len(keys)])
		i++
	}
}
