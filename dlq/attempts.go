package dlq

import (
	"time"

	"github.com/levee-dev/levee/internal/lru"
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

// attemptTable is a bounded LRU map from handler and message UUID to
// record, so the attempt count survives a redelivery on transports without
// a delivery count. It is safe for concurrent use; the success path skips
// its lock while it is empty. A message without a UUID is not tracked.
type attemptTable struct{ m *lru.Map[tableKey, record] }

func newAttemptTable(max int) *attemptTable {
	return &attemptTable{m: lru.New[tableKey, record](max)}
}

// get returns the record for key.
func (t *attemptTable) get(key tableKey) (record, bool) {
	if key.uuid == "" {
		return record{}, false
	}
	return t.m.Get(key)
}

// put stores rec for key, evicting the least recently used entry when full.
func (t *attemptTable) put(key tableKey, rec record) {
	if key.uuid != "" {
		t.m.Put(key, rec)
	}
}

// forget removes key. It costs one atomic load while the table is empty.
func (t *attemptTable) forget(key tableKey) { t.m.Delete(key) }

// len returns the number of entries.
func (t *attemptTable) len() int { return t.m.Len() }
