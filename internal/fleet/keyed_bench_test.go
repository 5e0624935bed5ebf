package fleet_test

import (
	"strconv"
	"testing"

	"github.com/levee-dev/levee/internal/fleet"
)

// BenchmarkKeyedAcquire is the cost of finding a key's Pool (Acquire and
// Release) with max_keys 10,000: "steady" is one key that stays live (the
// path of every message without churn), "churn" a new key for every call,
// the keys cycling through twice max_keys, so each call evicts one (high
// key churn: many distinct keys, such as per-customer limits). A new
// key's Pool starts a goroutine, and an evicted one is closed on a
// goroutine of its own: churn measures those too.
func BenchmarkKeyedAcquire(b *testing.B) {
	const maxKeys = 10000
	newKeyed := func(b *testing.B) *fleet.Keyed {
		b.Helper()
		k := fleet.NewKeyed(fleet.PoolConfig{Store: fleet.NewMemStore(), Key: "bench", Member: "a", Rate: 1e9}, maxKeys)
		b.Cleanup(func() { _ = k.Close() })
		return k
	}
	b.Run("steady", func(b *testing.B) {
		k := newKeyed(b)
		for i := range maxKeys { // a full registry
			k.Release(acquire(b, k, strconv.Itoa(i)))
		}
		b.ReportAllocs()
		for b.Loop() {
			k.Release(acquire(b, k, "7"))
		}
	})
	b.Run("steady_parallel", func(b *testing.B) {
		k := newKeyed(b)
		for i := range maxKeys {
			k.Release(acquire(b, k, strconv.Itoa(i)))
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				k.Release(acquire(b, k, "7"))
			}
		})
	})
	b.Run("churn", func(b *testing.B) {
		k := newKeyed(b)
		keys := make([]string, 2*maxKeys)
		for i := range keys {
			keys[i] = "c" + strconv.Itoa(i)
		}
		for _, key := range keys[:maxKeys] {
			k.Release(acquire(b, k, key))
		}
		b.ReportAllocs()
		i := maxKeys
		for b.Loop() {
			k.Release(acquire(b, k, keys[i%len(keys)]))
			i++
		}
	})
}

func acquire(b *testing.B, k *fleet.Keyed, key string) *fleet.KeyedPool {
	e, over := k.Acquire(key)
	if e == nil || over {
		b.Fatalf("Acquire(%q): got %v, overflow %v", key, e, over)
	}
	return e
}
