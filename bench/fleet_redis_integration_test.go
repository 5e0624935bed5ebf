//go:build integration

package bench

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/ratelimit"
)

// fleetRedis opens a client and a fleet store under a fresh prefix on the
// shared Redis (keys deleted at the end); it skips when Redis is down.
func fleetRedis(b *testing.B) (*redis.Client, *fleetredis.Store, string) {
	b.Helper()
	opt, err := redis.ParseURL(brokertest.RedisURL())
	if err != nil {
		b.Fatal(err)
	}
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	if err := c.Ping(context.Background()).Err(); err != nil {
		_ = c.Close()
		b.Skipf("redis unreachable: %v", err)
	}
	prefix := brokertest.Name("levee_bench_fleet")
	s, err := fleetredis.New(c, prefix)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		deleteRedisPrefix(context.Background(), c, prefix)
		deleteRedisPrefix(context.Background(), c, "gobreaker:mutex:"+prefix)
		deleteRedisPrefix(context.Background(), c, "gobreaker:"+prefix)
		_ = c.Close()
	})
	return c, s, prefix
}

// BenchmarkFleetVsRedisRate: one message through a fleet limit on Redis
// (Levee: tokens leased ahead, no round trip per message) against
// go-redis/redis_rate v10 (GCRA on the same Redis, one round trip per
// message), both at a limit never reached.
func BenchmarkFleetVsRedisRate(b *testing.B) {
	c, s, prefix := fleetRedis(b)
	b.Run("levee-fleet", func(b *testing.B) {
		l, err := ratelimit.New(ratelimit.WithFleet(ratelimit.Fleet{Store: s, Key: "vs", Rate: 1e9}))
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		h := l.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		msg := message.NewMessage("1", nil)
		_, _ = h(msg)
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
	b.Run("redis_rate", func(b *testing.B) {
		lim := redis_rate.NewLimiter(c)
		ctx := context.Background()
		limit := redis_rate.PerSecond(1e9)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r, err := lim.Allow(ctx, prefix+":rr", limit); err != nil || r.Allowed == 0 {
					b.Error(err)
					return
				}
			}
		})
	})
}

// countingStore counts round trips.
type countingStore struct {
	breaker.FleetStore
	n atomic.Int64
}

func (c *countingStore) Lease(ctx context.Context, r fleet.LeaseRequest) (fleet.Lease, error) {
	c.n.Add(1)
	return c.FleetStore.Lease(ctx, r)
}

func (c *countingStore) Report(ctx context.Context, r fleet.Report) (fleet.View, error) {
	c.n.Add(1)
	return c.FleetStore.Report(ctx, r)
}

// BenchmarkFleetRoundTrips: 4 replicas (in-process Limiters, 4 workers
// each) saturate a 10,000/s fleet limit on Redis for 2 s; reported: the
// fleet's msgs/s and the Redis round trips per second of the whole fleet
// (target <= 50). redis_rate would need one per message: 10,000/s. Run
// it with -benchtime 1x: one op is the whole 2 s run.
func BenchmarkFleetRoundTrips(b *testing.B) {
	_, s, _ := fleetRedis(b)
	cs := &countingStore{FleetStore: s}
	for range b.N {
		var n atomic.Int64
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		var wg sync.WaitGroup
		var ls []*ratelimit.Limiter
		for range 4 {
			l, err := ratelimit.New(ratelimit.WithFleet(ratelimit.Fleet{Store: cs, Key: "rt", Rate: 10000}))
			if err != nil {
				b.Fatal(err)
			}
			ls = append(ls, l)
			h := l.Middleware(func(*message.Message) ([]*message.Message, error) { n.Add(1); return nil, nil })
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					msg := message.NewMessage("1", nil)
					msg.SetContext(ctx)
					for ctx.Err() == nil {
						_, _ = h(msg)
					}
				}()
			}
		}
		time.Sleep(500 * time.Millisecond) // warm-up
		n0, rt0 := n.Load(), cs.n.Load()
		<-ctx.Done()
		n1, rt1 := n.Load(), cs.n.Load()
		cancel()
		wg.Wait()
		for _, l := range ls {
			_ = l.Close()
		}
		b.ReportMetric(float64(n1-n0)/2, "msgs/s")
		b.ReportMetric(float64(rt1-rt0)/2, "roundtrips/s")
	}
}

// gobreakerStore is a gobreaker v2 SharedDataStore on Redis, as its
// README describes one: a SET NX lock and a key for the state.
type gobreakerStore struct {
	c      *redis.Client
	prefix string
}

func (g gobreakerStore) Lock(name string) error {
	ctx := context.Background()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		ok, err := g.c.SetNX(ctx, g.prefix+name, "1", 5*time.Second).Result()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		time.Sleep(50 * time.Microsecond)
	}
	return errors.New("lock timeout")
}

func (g gobreakerStore) Unlock(name string) error {
	return g.c.Del(context.Background(), g.prefix+name).Err()
}

func (g gobreakerStore) GetData(name string) ([]byte, error) {
	v, err := g.c.Get(context.Background(), g.prefix+name).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return v, err
}

func (g gobreakerStore) SetData(name string, data []byte) error {
	return g.c.Set(context.Background(), g.prefix+name, data, 0).Err()
}

// BenchmarkFleetBreakerVsGobreaker: one successful message through a
// fleet breaker on Redis (Levee: one atomic load and an atomic add; the
// counts go to Redis every 200ms) against gobreaker v2's
// DistributedCircuitBreaker on the same Redis (a lock, a read, a write and
// an unlock around each call).
func BenchmarkFleetBreakerVsGobreaker(b *testing.B) {
	c, s, prefix := fleetRedis(b)
	b.Run("levee-fleet", func(b *testing.B) {
		fb, err := breaker.NewFleet(breaker.Fleet{Store: s, Key: "vs"})
		if err != nil {
			b.Fatal(err)
		}
		defer fb.Close()
		h := fb.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, nil })
		msg := message.NewMessage("1", nil)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = h(msg)
			}
		})
	})
	b.Run("gobreaker-distributed", func(b *testing.B) {
		cb, err := gobreaker.NewDistributedCircuitBreaker[any](gobreakerStore{c: c, prefix: prefix + ":"},
			gobreaker.Settings{Name: prefix})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cb.Execute(func() (any, error) { return nil, nil }); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
