// Package lru is a bounded least-recently-used map, safe for concurrent
// use, whose Len costs one atomic load so a hot path can skip the lock
// while it is empty. Levee keeps per-message state that must survive a
// redelivery in it (dlq attempts, priority first arrivals).
package lru

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// Map is a bounded LRU map. The zero value is not usable; use New.
type Map[K comparable, V any] struct {
	max  int
	size atomic.Int64 // mirrors len(items)

	mu    sync.Mutex
	items map[K]*list.Element // guarded by mu
	order *list.List          // guarded by mu; front = most recent
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a Map that keeps at most max entries; max <= 0 keeps none.
func New[K comparable, V any](max int) *Map[K, V] {
	return &Map[K, V]{max: max, items: map[K]*list.Element{}, order: list.New()}
}

// Get returns the value for k and marks it most recently used.
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
	m.order.MoveToFront(e)
	return e.Value.(*entry[K, V]).val, true
}

// Put stores v for k, evicting the least recently used entry when full.
func (m *Map[K, V]) Put(k K, v V) {
	if m.max <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.items[k]; ok {
		e.Value.(*entry[K, V]).val = v
		m.order.MoveToFront(e)
		return
	}
	for m.order.Len() >= m.max {
		last := m.order.Back()
		m.order.Remove(last)
		delete(m.items, last.Value.(*entry[K, V]).key)
	}
	m.items[k] = m.order.PushFront(&entry[K, V]{key: k, val: v})
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
		m.order.Remove(e)
		delete(m.items, k)
		m.size.Store(int64(m.order.Len()))
	}
}

// Len returns the number of entries.
func (m *Map[K, V]) Len() int { return int(m.size.Load()) }
