package dlq

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/trunc"
)

// AttemptStore counts the failed attempts of messages across processes.
// Without one, a Retrier counts attempts from the transport's delivery
// count (KeyDeliveryCount) or, on transports without one (GoChannel,
// Kafka, Redis Streams, PostgreSQL), in its own in-process table, so a
// redelivery that reaches another instance, or a restarted process,
// starts counting again and a poison message gets up to max_attempts
// tries per instance. With an AttemptStore shared by every instance
// (adapters/redisstore and adapters/pgstore implement it), the count is
// the total: the message is dead-lettered after max_attempts attempts,
// wherever they ran.
//
// The Retrier calls it only after an attempt failed, never on the success
// path. Implementations must be safe for concurrent use and increment
// atomically: concurrent calls for one key return distinct counts.
type AttemptStore interface {
	// Fail records one failed attempt of the message uuid in handler at
	// now and returns how many failed attempts are recorded for it, this
	// one included, and when the first was. The record expires ttl after
	// now; a call after that starts again at 1.
	Fail(ctx context.Context, handler, uuid string, now time.Time, ttl time.Duration) (attempts int, first time.Time, err error)
}

// Defaults of the shared attempt count.
const (
	// DefaultAttemptTTL is how long a shared attempt record outlives the
	// last failure of its message.
	DefaultAttemptTTL = 24 * time.Hour
	// AttemptStoreTimeout bounds one AttemptStore call (and the message
	// context bounds it too).
	AttemptStoreTimeout = 2 * time.Second
)

// WithAttemptStore makes the Retrier count failed attempts in s, shared
// with every Retrier (in any process) using the same store: after each
// failed attempt it records the failure and takes the larger of the
// shared count and its own (this process's failures); the transport's
// delivery count is not used, since it also counts deliveries that made
// no attempt. Default nil: attempts are counted per process. If the store
// fails, the Retrier logs the error and counts that attempt as without a
// store (its own count or the delivery count): the message is retried,
// never dropped.
func WithAttemptStore(s AttemptStore) Option {
	return optionFunc(func(c *config) { c.attemptStore = s })
}

// WithAttemptTTL sets how long a shared attempt record outlives the last
// failure of its message: longer than the longest gap between two
// deliveries of a failing message (backoff, redelivery delay, downtime).
// Default DefaultAttemptTTL (24h); it must be positive.
func WithAttemptTTL(d time.Duration) Option {
	return optionFunc(func(c *config) { c.attemptTTL = d })
}

// countAttempt returns the attempt count and first failure after the
// failed attempt d just made. With an attempt store it records the
// attempt there, and the store's count (or the table's, if larger: this
// process's own failures) is the count. The transport's delivery count is
// then not used: it also counts deliveries that made no attempt in another
// process (deferrals, messages a killed consumer had fetched and never
// handled, deliveries its kill interrupted), whose table records died with
// it, so a restarted consumer dead-lettered a poison message after fewer
// than max attempts (found by the chaos suite, docs/RELIABILITY.md). When
// the store fails, the delivery count is the fallback, as without a store.
func (w *wrapped) countAttempt(msg *message.Message, n *names, d *delivery, now time.Time) (int, time.Time) {
	if w.r.cfg.attemptStore == nil {
		return d.attempt, d.first
	}
	attempt, first, ok := w.shareAttempt(msg, n, d.attempt, d.first, now)
	if !ok {
		byDelivery := max(deliveryAttempts(msg.Metadata)-d.rec.deferrals, 0) + d.made
		attempt = min(max(attempt, byDelivery), maxCount)
	}
	return attempt, first
}

// shareAttempt records the failed attempt in the attempt store and
// returns the larger attempt count and the earlier first failure; ok is
// false when the store failed (attempt and first are then unchanged).
func (w *wrapped) shareAttempt(msg *message.Message, n *names, attempt int, first, now time.Time) (int, time.Time, bool) {
	cfg := &w.r.cfg
	if msg.UUID == "" {
		return attempt, first, false
	}
	ctx, cancel := context.WithTimeout(msg.Context(), AttemptStoreTimeout)
	total, sharedFirst, err := cfg.attemptStore.Fail(ctx, n.handler, msg.UUID, now, cfg.attemptTTL)
	cancel()
	if err != nil {
		w.r.ins.attemptStoreErr.Add(msg.Context(), 1, n.attrs.base)
		cfg.logger.Error("levee dlq: attempt store failed; counting this attempt in process", trunc.LogError(err), watermill.LogFields{
			"uuid": trunc.Log(msg.UUID), "handler": n.handler, "attempt": attempt})
		return attempt, first, false
	}
	if total > attempt {
		attempt = min(total, maxCount)
	}
	if !sharedFirst.IsZero() && sharedFirst.Before(first) {
		first = sharedFirst
	}
	return attempt, first, true
}
