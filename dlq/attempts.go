package dlq

import (
	"time"

	"github.com/levee-dev/levee/internal/lru"
	"github.com/levee-dev/levee/internal/trunc"
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
	// publishFails counts consecutive failed dead-letter publishes; class
	// is the class the message was being dead-lettered with.
	publishFails int
	class        Class
	// deferrals counts deliveries Nacked without a handler attempt;
	// deferredSince is the first one's time (WithMaxDeferred).
	deferrals     int
	deferredSince time.Time
	// dueByDeferral says notBefore is a deferral's RetryAfter, not a
	// backoff after a failed attempt.
	dueByDeferral bool
}

// keptError returns what the attempt table keeps of a transient handler
// error until the message's retry: err itself when its message has at
// most limit bytes, else its message cut to limit (a keptError), so the
// table's memory stays bounded by its size when handler errors quote the
// message (a producer's megabyte value would otherwise stay for every
// entry). The kept error is only reported (an early redelivery's Nack, an
// interrupted wait); a dead letter is always built from the error itself.
func keptError(err error, limit int) error {
	if err == nil || len(err.Error()) <= limit {
		return err
	}
	return &cutError{msg: trunc.String(err.Error(), limit)}
}

// cutError is a transient handler error's message, cut.
type cutError struct{ msg string }

func (e *cutError) Error() string { return e.msg }

// tableKey identifies one message in one wrapped handler, so two handlers
// consuming the same message count their attempts apart.
type tableKey struct {
	w    *wrapped
	uuid string
}

// attemptTable is a bounded map from handler and message UUID to record,
// so the attempt count survives a redelivery on transports without a
// delivery count. It keeps two LRU maps of the same bound: records with a
// failed attempt, and records of deliveries that were only deferred. A
// flood of deferrals (an overload that makes the limiter or the scheduler
// shed a backlog larger than the table) then evicts only other deferral
// records, never the attempt count of a failing message, which would give
// a poison message more than max attempts (found by the chaos suite,
// docs/RELIABILITY.md). It is safe for concurrent use; the success path
// skips its locks while it is empty. An empty key is not tracked (a
// message without a UUID is keyed by its content: idkey.Message).
//
// A record waits for its message's redelivery, which may never come to
// this process: the broker took the ack of a duplicate delivered while the
// first copy was held (NATS redelivering past AckWait under load),
// another consumer took the redelivery, or the broker dropped the message.
// So a record expires ttl after it was stored, or after its notBefore when
// that is later (WithAttemptTableTTL), and is swept as messages pass
// (sweepEvery), so a stale record neither keeps the success path off its
// empty-table fast path nor gives a later message with its UUID its count.
type attemptTable struct {
	failed   *lru.Map[tableKey, record] // records with attempts > 0
	deferred *lru.Map[tableKey, record] // records with deferrals only
	ttl      time.Duration
}

// sweepEvery is how often the slow path scans the table for expired
// records.
const sweepEvery = time.Second

func newAttemptTable(max int, ttl time.Duration) *attemptTable {
	return &attemptTable{failed: lru.New[tableKey, record](max), deferred: lru.New[tableKey, record](max), ttl: ttl}
}

// get returns the record for key.
func (t *attemptTable) get(key tableKey) (record, bool) {
	if key.uuid == "" {
		return record{}, false
	}
	if rec, ok := t.failed.Get(key); ok {
		return rec, true
	}
	return t.deferred.Get(key)
}

// put stores rec for key, evicting the least recently used entry of its
// kind when that map is full.
func (t *attemptTable) put(key tableKey, rec record) {
	if key.uuid == "" {
		return
	}
	expires := time.Now()
	if rec.notBefore.After(expires) {
		expires = rec.notBefore
	}
	expires = expires.Add(t.ttl)
	if rec.attempts > 0 {
		t.failed.PutUntil(key, rec, expires)
		t.deferred.Delete(key)
		return
	}
	t.deferred.PutUntil(key, rec, expires)
}

// sweep removes the expired records, scanning at most once per every (0:
// now).
func (t *attemptTable) sweep(now time.Time, every time.Duration) {
	t.failed.Sweep(now, every)
	t.deferred.Sweep(now, every)
}

// forget removes key. It costs two atomic loads while the table is empty.
func (t *attemptTable) forget(key tableKey) {
	t.failed.Delete(key)
	t.deferred.Delete(key)
}

// Pending returns how many messages the in-process attempt table tracks
// (Nacked after a failure or a deferral, not yet settled, not expired:
// see WithAttemptTableTTL). It removes the expired entries first.
func (r *Retrier) Pending() int {
	r.table.sweep(time.Now(), 0)
	return r.table.len()
}

// len returns the number of entries.
func (t *attemptTable) len() int { return t.failed.Len() + t.deferred.Len() }
