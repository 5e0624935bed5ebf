package dlq

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// record is what the table keeps for a message that was Nacked after
// failing or being deferred: attempts made, when it first failed, the
// earliest time the next attempt may run, and how many of its deliveries
// ended without an attempt (deferrals), which a transport's delivery count
// includes but the attempt count must not.
type record struct {
	attempts  int
	first     time.Time
	notBefore time.Time
	err       error // the last handler error
	// publishFails counts consecutive failed dead-letter publishes.
	publishFails int
	// deferrals counts deliveries Nacked without a handler attempt.
	deferrals int
}

// tableKey identifies one message in one wrapped handler, so two handlers
// consuming the same message count their attempts apart.
type tableKey struct {
	w    *wrapped
	uuid string
}

// attemptTable is a bounded LRU map from handler and message UUID to record, so the
// attempt count survives a redelivery on transports without a delivery
// count. It is safe for concurrent use. size mirrors len(items) so the
// success path can skip the lock while the table is empty.
type attemptTable struct {
	max  int
	size atomic.Int64

	mu    sync.Mutex
	items map[tableKey]*list.Element // guarded by mu
	order *list.List                 // guarded by mu; front = most recent
}

type tableEntry struct {
	key tableKey
	rec record
}

func newAttemptTable(max int) *attemptTable {
	return &attemptTable{max: max, items: map[tableKey]*list.Element{}, order: list.New()}
}

// get returns the record for key.
func (t *attemptTable) get(key tableKey) (record, bool) {
	if key.uuid == "" || t.size.Load() == 0 {
		return record{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.items[key]
	if !ok {
		return record{}, false
	}
	t.order.MoveToFront(e)
	return e.Value.(*tableEntry).rec, true
}

// put stores rec for key, evicting the least recently used entry when full.
func (t *attemptTable) put(key tableKey, rec record) {
	if key.uuid == "" || t.max == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.items[key]; ok {
		e.Value.(*tableEntry).rec = rec
		t.order.MoveToFront(e)
		return
	}
	for t.order.Len() >= t.max {
		last := t.order.Back()
		t.order.Remove(last)
		delete(t.items, last.Value.(*tableEntry).key)
	}
	t.items[key] = t.order.PushFront(&tableEntry{key: key, rec: rec})
	t.size.Store(int64(t.order.Len()))
}

// forget removes key. It costs one atomic load while the table is empty.
func (t *attemptTable) forget(key tableKey) {
	if key.uuid == "" || t.size.Load() == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.items[key]; ok {
		t.order.Remove(e)
		delete(t.items, key)
		t.size.Store(int64(t.order.Len()))
	}
}

// len returns the number of entries.
func (t *attemptTable) len() int { return int(t.size.Load()) }
