package fleet

import (
	"sync"
	"sync/atomic"
	"time"
)

// Keyed is a bounded set of Pools, one per key of a per-key fleet limit.
// At most max keys live at once: a new key beyond that evicts the least
// recently used one that no caller holds (its Pool is closed, its tokens
// given back, on a goroutine of its own: the message that brought the new
// key does not wait for that store call). When every key is held (messages are waiting on each), a
// new key gets the fallback Pool, key "", which is never evicted. It is
// safe for concurrent use; Close closes every Pool.
type Keyed struct {
	base     PoolConfig
	max      int
	evicting sync.WaitGroup // evicted Pools closing; Add under mu

	mu sync.Mutex
	// guarded by mu
	pools    map[string]*KeyedPool
	fallback *KeyedPool
	closed   bool
}

// KeyedPool is one key's Pool with the references callers hold on it.
type KeyedPool struct {
	p    *Pool
	refs atomic.Int32 // incremented only under Keyed.mu
	used time.Time    // guarded by Keyed.mu
}

// Pool returns the Pool.
func (e *KeyedPool) Pool() *Pool { return e.p }

// NewKeyed returns a Keyed whose Pools use base with Key set to
// base.Key + ":" + key.
func NewKeyed(base PoolConfig, maxKeys int) *Keyed {
	return &Keyed{base: base, max: max(maxKeys, 1), pools: map[string]*KeyedPool{}}
}

// Acquire returns key's Pool with a reference held, starting it the first
// time, and whether the key overflowed to the fallback Pool (key ""): the
// caller takes its token and then calls Release. A held key is never
// evicted, so a message waiting for its key's token is not failed by
// other keys. Acquire returns nil after Close.
func (k *Keyed) Acquire(key string) (*KeyedPool, bool) {
	now := time.Now()
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil, false
	}
	if key == "" {
		e := k.fallbackLocked(now)
		k.mu.Unlock()
		return e, false
	}
	if e := k.pools[key]; e != nil {
		e.used = now
		e.refs.Add(1)
		k.mu.Unlock()
		return e, false
	}
	var evict *Pool
	if len(k.pools) >= k.max {
		var oldest *KeyedPool
		var name string
		for n, e := range k.pools {
			if e.refs.Load() == 0 && (oldest == nil || e.used.Before(oldest.used)) {
				oldest, name = e, n
			}
		}
		if oldest == nil { // every key is held
			e := k.fallbackLocked(now)
			k.mu.Unlock()
			return e, e != nil
		}
		evict = oldest.p
		delete(k.pools, name)
		k.evicting.Add(1) // under mu: Close, which sets closed under mu, waits for it
	}
	e, err := k.newLocked(key, now)
	if err == nil {
		k.pools[key] = e
	}
	k.mu.Unlock()
	if evict != nil {
		go func() {
			defer k.evicting.Done()
			_ = evict.Close()
		}()
	}
	return e, false
}

// Release drops a reference Acquire took.
func (k *Keyed) Release(e *KeyedPool) { e.refs.Add(-1) }

// Pool returns key's Pool, starting it the first time; nil after Close. It
// holds no reference: the Pool may be evicted at once (use Acquire).
func (k *Keyed) Pool(key string) *Pool {
	e, _ := k.Acquire(key)
	if e == nil {
		return nil
	}
	k.Release(e)
	return e.p
}

// fallbackLocked returns the fallback Pool with a reference held (nil
// when it cannot start).
func (k *Keyed) fallbackLocked(now time.Time) *KeyedPool {
	if k.fallback == nil {
		e, err := k.newLocked("", now)
		if err != nil {
			return nil
		}
		k.fallback = e
		return e
	}
	k.fallback.refs.Add(1)
	return k.fallback
}

// newLocked starts key's Pool with one reference held.
func (k *Keyed) newLocked(key string, now time.Time) (*KeyedPool, error) {
	cfg := k.base
	cfg.Key = k.base.Key + ":" + key
	p, err := NewPool(cfg)
	if err != nil {
		return nil, err
	}
	e := &KeyedPool{p: p, used: now}
	e.refs.Add(1)
	return e, nil
}

// Len returns the number of live keys (the fallback key not counted).
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.pools)
}

// Close closes every Pool, and waits for evicted ones to close; later
// Acquire and Pool calls return nil. Idempotent.
func (k *Keyed) Close() error {
	k.mu.Lock()
	pools, fb := k.pools, k.fallback
	k.pools, k.fallback, k.closed = map[string]*KeyedPool{}, nil, true
	k.mu.Unlock()
	for _, e := range pools {
		_ = e.p.Close()
	}
	if fb != nil {
		_ = fb.p.Close()
	}
	k.evicting.Wait()
	return nil
}
