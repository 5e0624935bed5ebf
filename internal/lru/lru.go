// Package lru is a bounded least-recently-used map, safe for concurrent
// use, whose Len costs one atomic load so a hot path can skip the lock
// while it is empty. Levee keeps per-message state that must survive a
// redelivery in it (dlq attempts, priority first arrivals). Such state
// waits for a redelivery that may never come to this process (another
// consumer took it, a duplicate was acked, the broker dropped it), so an
// entry can be given an expiry (PutUntil): Get no longer returns it after
// that, and Sweep removes it.
package lru

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Map is a bounded LRU map. The zero value is not usable; use New.
type Map[K comparable, V any] struct {
	max  int
	size atomic.Int64 // mirrors len(items)

	// nextSweep is when Sweep next scans (unix nanoseconds), so a caller
	// may call it on every slow-path operation.
	nextSweep atomic.Int64

	mu    sync.Mutex
	items map[K]*list.Element // guarded by mu
	order *list.List          // guarded by mu; front = most recent
}

type entry[K comparable, V any] struct {
	key     K
	val     V
	expires time.Time // zero: never
}

// expired reports whether e has expired at now.
func (e *entry[K, V]) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

// New returns a Map that keeps at most max entries; max <= 0 keeps none.
func New[K comparable, V any](max int) *Map[K, V] {
	return &Map[K, V]{max: max, items: map[K]*list.Element{}, order: list.New()}
}

// Get returns the value for k and marks it most recently used. An entry
// past its expiry is removed and not returned.
func (m *Map[K, V]) Get(k K) (V, bool) {
	var zero V
	if m.size.Load() == 0 {
		return zero, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.items[k]
	if !ok {
		return zero, false
	}
	ent := e.Value.(*entry[K, V])
	if !ent.expires.IsZero() && ent.expired(time.Now()) {
		m.remove(e)
		return zero, false
	}
	m.order.MoveToFront(e)
	return ent.val, true
}

// Put stores v for k, evicting the least recently used entry when full.
// The entry never expires.
func (m *Map[K, V]) Put(k K, v V) { m.PutUntil(k, v, time.Time{}) }

// PutUntil stores v for k until expires (the zero time: never), evicting
// the least recently used entry when full. Storing k again replaces its
// value and its expiry.
func (m *Map[K, V]) PutUntil(k K, v V, expires time.Time) {
	if m.max <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.items[k]; ok {
		ent := e.Value.(*entry[K, V])
		ent.val, ent.expires = v, expires
		m.order.MoveToFront(e)
		return
	}
	for m.order.Len() >= m.max {
		last := m.order.Back()
		m.order.Remove(last)
		delete(m.items, last.Value.(*entry[K, V]).key)
	}
	m.items[k] = m.order.PushFront(&entry[K, V]{key: k, val: v, expires: expires})
	m.size.Store(int64(m.order.Len()))
}

// Sweep removes the entries expired at now and returns how many it
// removed. It scans the whole map, at most once per every (0: at every
// call); between scans it costs one atomic load, so a caller can sweep
// from every operation off its fast path.
func (m *Map[K, V]) Sweep(now time.Time, every time.Duration) int {
	if m.size.Load() == 0 {
		return 0
	}
	if every > 0 {
		next := m.nextSweep.Load()
		if now.UnixNano() < next || !m.nextSweep.CompareAndSwap(next, now.Add(every).UnixNano()) {
			return 0
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for e := m.order.Front(); e != nil; {
		next := e.Next()
		if e.Value.(*entry[K, V]).expired(now) {
			m.remove(e)
			n++
		}
		e = next
	}
	return n
}

// remove drops e; m.mu must be held.
func (m *Map[K, V]) remove(e *list.Element) {
	m.order.Remove(e)
	delete(m.items, e.Value.(*entry[K, V]).key)
	m.size.Store(int64(m.order.Len()))
}

// Delete removes k. It costs one atomic load while the map is empty.
func (m *Map[K, V]) Delete(k K) {
	if m.size.Load() == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.items[k]; ok {
		m.remove(e)
	}
}

// Len returns the number of entries.
func (m *Map[K, V]) Len() int { return int(m.size.Load()) }
