package fleet

import (
	"sync"
	"time"
)

// Keyed is a bounded set of Pools, one per key of a per-key fleet limit.
// At most max keys live at once: a new key beyond that evicts the least
// recently used one (its Pool is closed, its tokens given back). It is
// safe for concurrent use; Close closes every Pool.
type Keyed struct {
	base PoolConfig
	max  int

	mu sync.Mutex
	// guarded by mu
	pools  map[string]*keyedPool
	closed bool
}

type keyedPool struct {
	p    *Pool
	used time.Time
}

// NewKeyed returns a Keyed whose Pools use base with Key set to
// base.Key + ":" + key.
func NewKeyed(base PoolConfig, maxKeys int) *Keyed {
	return &Keyed{base: base, max: max(maxKeys, 1), pools: map[string]*keyedPool{}}
}

// Pool returns key's Pool, starting it the first time; nil after Close.
func (k *Keyed) Pool(key string) *Pool {
	now := time.Now()
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	if e := k.pools[key]; e != nil {
		e.used = now
		k.mu.Unlock()
		return e.p
	}
	var evict *Pool
	if len(k.pools) >= k.max {
		var oldest string
		var at time.Time
		for name, e := range k.pools {
			if at.IsZero() || e.used.Before(at) {
				oldest, at = name, e.used
			}
		}
		evict = k.pools[oldest].p
		delete(k.pools, oldest)
	}
	cfg := k.base
	cfg.Key = k.base.Key + ":" + key
	p, err := NewPool(cfg)
	if err != nil {
		k.mu.Unlock()
		return nil
	}
	k.pools[key] = &keyedPool{p: p, used: now}
	k.mu.Unlock()
	if evict != nil {
		_ = evict.Close()
	}
	return p
}

// Len returns the number of live keys.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.pools)
}

// Close closes every Pool; later Pool calls return nil. Idempotent.
func (k *Keyed) Close() error {
	k.mu.Lock()
	pools := k.pools
	k.pools, k.closed = map[string]*keyedPool{}, true
	k.mu.Unlock()
	for _, e := range pools {
		_ = e.p.Close()
	}
	return nil
}
