package fleet_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/testkit"
)

// closed reports whether p was closed (an evicted key's Pool): a Take
// without wait on a Pool with no token left returns Closed only then.
func closed(p *fleet.Pool) bool {
	return p.Take(context.Background(), 0, false).Status == fleet.Closed
}

// TestKeyedEvictionOrder: at max_keys a new key evicts the key whose
// last caller released it longest ago, one per new key; a key a caller
// still holds is skipped, and a key held while others came and went
// counts as used when it is released, not when it was acquired.
func TestKeyedEvictionOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int
		// steps: "+x" acquires x, "-x" releases it, "x" does both
		steps   []string
		evicted []string // in order
	}{
		{"in release order", 3, []string{"a", "b", "c", "d", "e", "f"}, []string{"a", "b", "c"}},
		{"a use moves a key to the front", 3, []string{"a", "b", "c", "a", "d", "e", "f"}, []string{"b", "c", "a"}},
		{"a held key is skipped", 2, []string{"+a", "b", "c", "d"}, []string{"b", "c"}},
		{"a key is used until its release", 2, []string{"+a", "b", "-a", "c", "d"}, []string{"b", "a"}},
		{"a key held twice until its last release", 2, []string{"+a", "+a", "b", "-a", "c", "-a", "d"}, []string{"b", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.Synctest(t, func(t *testing.T) {
				k := fleet.NewKeyed(fleet.PoolConfig{Store: fleet.NewMemStore(), Key: "k", Member: "a", Rate: 10}, tc.max)
				defer k.Close()
				held := map[string][]*fleet.KeyedPool{}
				seen := map[*fleet.Pool]string{}
				var evicted []string
				for _, s := range tc.steps {
					key := s
					if s[0] == '+' || s[0] == '-' {
						key = s[1:]
					}
					if s[0] != '-' {
						e, over := k.Acquire(key)
						if e == nil || over {
							t.Fatalf("step %q: got %v, overflow %v", s, e, over)
						}
						seen[e.Pool()] = key
						held[key] = append(held[key], e)
					}
					if s[0] != '+' {
						n := len(held[key]) - 1
						k.Release(held[key][n])
						held[key] = held[key][:n]
					}
					synctest.Wait() // an evicted Pool is closed on a goroutine
					for p, key := range seen {
						if closed(p) {
							evicted = append(evicted, key)
							delete(seen, p)
						}
					}
					time.Sleep(time.Millisecond)
				}
				if !slices.Equal(evicted, tc.evicted) {
					t.Errorf("evicted %q, want %q", evicted, tc.evicted)
				}
				if n := k.Len(); n != tc.max {
					t.Errorf("%d live keys, want max_keys %d", n, tc.max)
				}
			})
		})
	}
}

// TestKeyedChurnLosesNothing: callers on many goroutines acquire keys
// from a set much larger than max_keys, so nearly every Acquire evicts.
// No held key is evicted under a caller (its Take is never Closed), the
// registry never holds more than max_keys keys, and once every caller is
// done every key is evictable again: max_keys new keys each find a key to
// evict instead of overflowing to the fallback, and the old keys are all
// gone.
func TestKeyedChurnLosesNothing(t *testing.T) {
	const maxKeys, workers, keys, rounds = 8, 6, 64, 300
	k := fleet.NewKeyed(fleet.PoolConfig{Store: fleet.NewMemStore(), Key: "k", Member: "a", Rate: 1e6}, maxKeys)
	defer k.Close()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				e, _ := k.Acquire(fmt.Sprint("k", r.IntN(keys)))
				if e == nil {
					t.Error("Acquire returned nil before Close")
					return
				}
				if res := e.Pool().Take(context.Background(), time.Second, true); res.Status == fleet.Closed {
					t.Error("a held key's Pool was closed under its caller")
				}
				if n := k.Len(); n > maxKeys {
					t.Errorf("%d live keys, max_keys %d", n, maxKeys)
				}
				k.Release(e)
			}
		})
	}
	wg.Wait()
	if n := k.Len(); n != maxKeys {
		t.Fatalf("%d live keys after the churn, want %d", n, maxKeys)
	}
	var fresh []*fleet.Pool
	for i := range maxKeys {
		e, over := k.Acquire(fmt.Sprint("fresh", i))
		if e == nil || over {
			t.Fatalf("fresh key %d: overflow %v; a released key was not evictable", i, over)
		}
		fresh = append(fresh, e.Pool())
		k.Release(e)
	}
	for i, p := range fresh {
		if closed(p) {
			t.Errorf("fresh key %d was evicted by another fresh key, want the old keys evicted", i)
		}
	}
}
