package fleet

import (
	"sync"
)

// Keyed is a bounded set of Pools, one per key of a per-key fleet limit.
// At most max keys live at once: a new key beyond that evicts the least
// recently used key that no caller holds, the one whose last caller
// released it longest ago (a held key is in use now). Its Pool is closed,
// its tokens given back, on a goroutine of its own: the message that
// brought the new key does not wait for that store call. When every key
// is held (messages are waiting on each), a new key gets the fallback
// Pool, key "", which is never evicted. Finding the key to evict costs
// O(1): the keys no caller holds are kept in a list in the order they
// were released. It is safe for concurrent use; Close closes every Pool.
type Keyed struct {
	base     PoolConfig
	max      int
	evicting sync.WaitGroup // evicted Pools closing; Add under mu

	mu sync.Mutex
	// guarded by mu
	pools    map[string]*KeyedPool
	fallback *KeyedPool
	idle     idleList // the keys of pools with no reference, least recently released last
	closed   bool
}

// KeyedPool is one key's Pool with the references callers hold on it.
type KeyedPool struct {
	p   *Pool
	key string
	// guarded by Keyed.mu
	refs       int32
	prev, next *KeyedPool // in Keyed.idle while refs == 0 (never the fallback)
}

// Pool returns the Pool.
func (e *KeyedPool) Pool() *Pool { return e.p }

// NewKeyed returns a Keyed whose Pools use base with Key set to
// base.Key + ":" + key. While the store fails, its Pools ask it at most
// once per period between them (outageGate).
func NewKeyed(base PoolConfig, maxKeys int) *Keyed {
	base.gate = &outageGate{}
	return &Keyed{base: base, max: max(maxKeys, 1), pools: map[string]*KeyedPool{}}
}

// Acquire returns key's Pool with a reference held, starting it the first
// time, and whether the key overflowed to the fallback Pool (key ""): the
// caller takes its token and then calls Release. A held key is never
// evicted, so a message waiting for its key's token is not failed by
// other keys. Acquire returns nil after Close.
func (k *Keyed) Acquire(key string) (*KeyedPool, bool) {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil, false
	}
	if key == "" {
		e := k.fallbackLocked()
		k.mu.Unlock()
		return e, false
	}
	if e := k.pools[key]; e != nil {
		if e.refs == 0 {
			k.idle.remove(e)
		}
		e.refs++
		k.mu.Unlock()
		return e, false
	}
	var evict *Pool
	if len(k.pools) >= k.max {
		oldest := k.idle.tail
		if oldest == nil { // every key is held
			e := k.fallbackLocked()
			k.mu.Unlock()
			return e, e != nil
		}
		k.idle.remove(oldest)
		delete(k.pools, oldest.key)
		evict = oldest.p
		k.evicting.Add(1) // under mu: Close, which sets closed under mu, waits for it
	}
	e, err := k.newLocked(key)
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

// Release drops a reference Acquire took. The last reference makes the
// key the most recently released one.
func (k *Keyed) Release(e *KeyedPool) {
	k.mu.Lock()
	e.refs--
	if e.refs == 0 && e != k.fallback && !k.closed {
		k.idle.pushFront(e)
	}
	k.mu.Unlock()
}

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
func (k *Keyed) fallbackLocked() *KeyedPool {
	if k.fallback == nil {
		e, err := k.newLocked("")
		if err != nil {
			return nil
		}
		k.fallback = e
		return e
	}
	k.fallback.refs++
	return k.fallback
}

// newLocked starts key's Pool with one reference held.
func (k *Keyed) newLocked(key string) (*KeyedPool, error) {
	cfg := k.base
	cfg.Key = k.base.Key + ":" + key
	p, err := NewPool(cfg)
	if err != nil {
		return nil, err
	}
	return &KeyedPool{p: p, key: key, refs: 1}, nil
}

// Len returns the number of live keys (the fallback key not counted).
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.pools)
}

// Close closes every Pool at once (so a stalled store makes it wait one
// store timeout, not one per key), and waits for evicted ones to close;
// later Acquire and Pool calls return nil. Idempotent.
func (k *Keyed) Close() error {
	k.mu.Lock()
	pools, fb := k.pools, k.fallback
	k.pools, k.fallback, k.idle, k.closed = map[string]*KeyedPool{}, nil, idleList{}, true
	k.mu.Unlock()
	if fb != nil {
		pools[""] = fb
	}
	// Each Pool gives its tokens back in a store call of its own, bounded
	// by the store timeout: closing them at once bounds Close by one store
	// timeout, not one per key, when the store stalls.
	var wg sync.WaitGroup
	for _, e := range pools {
		wg.Go(func() { _ = e.p.Close() })
	}
	wg.Wait()
	k.evicting.Wait()
	return nil
}

// idleList is a doubly linked list of KeyedPools through their prev and
// next fields: O(1) to add at the front and to remove any element, with
// no allocation (container/list allocates an element per insertion, and
// a key enters the list at every release).
type idleList struct{ head, tail *KeyedPool }

func (l *idleList) pushFront(e *KeyedPool) {
	e.prev, e.next = nil, l.head
	if l.head != nil {
		l.head.prev = e
	} else {
		l.tail = e
	}
	l.head = e
}

func (l *idleList) remove(e *KeyedPool) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}
