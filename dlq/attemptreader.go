package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/trunc"
)

// AttemptReader is an AttemptStore that can also read a message's count
// without recording a failure (adapters/redisstore and adapters/pgstore
// implement it). With one (WithAttemptStore), a Retrier that gets a
// redelivery it has no record of (the transport's delivery count says the
// message was delivered before, to this process or to one that died) reads
// the count first, and when max attempts are spent dead-letters the
// message (class exhausted, the error wrapping ErrAttemptsSpent) without
// calling the handler again. Without it, a consumer killed between a
// poison message's last failed attempt and its dead letter's publish gave
// the message one attempt more (found by the chaos suite,
// docs/RELIABILITY.md). Transports without a delivery count (RabbitMQ
// classic queues, Kafka, PostgreSQL) do not say which delivery is a
// redelivery, so the read is not made there (it would cost a store call
// per message).
type AttemptReader interface {
	AttemptStore
	// Attempts returns the failed attempts recorded for the message uuid
	// in handler at now (0 when none, or expired) and when the first was.
	Attempts(ctx context.Context, handler, uuid string, now time.Time) (attempts int, first time.Time, err error)
}

// ErrAttemptsSpent is wrapped by the error of a dead letter that a
// Retrier published without calling the handler, because the attempt
// store already recorded max attempts for the redelivered message.
var ErrAttemptsSpent = errors.New("levee/dlq: max attempts spent before this delivery")

// spentBefore reads the shared count of a redelivery this process has no
// record of; when max attempts are spent it dead-letters the message
// (done true). A failed read is logged and counted, and the delivery runs
// as usual.
func (w *wrapped) spentBefore(msg *message.Message) (out []*message.Message, done bool, err error) {
	cfg := &w.r.cfg
	reader, ok := cfg.attemptStore.(AttemptReader)
	if !ok || msg.UUID == "" || deliveryAttempts(msg.Metadata) == 0 {
		return nil, false, nil
	}
	n := w.resolve(msg)
	ctx, cancel := context.WithTimeout(msg.Context(), AttemptStoreTimeout)
	now := time.Now()
	count, first, rerr := reader.Attempts(ctx, n.handler, msg.UUID, now)
	cancel()
	if rerr != nil {
		w.r.ins.attemptStoreErr.Add(msg.Context(), 1, n.attrs.base)
		cfg.logger.Error("levee dlq: reading the attempt store failed; running the delivery", trunc.LogError(rerr), watermill.LogFields{
			"uuid": trunc.Log(msg.UUID), "handler": n.handler})
		return nil, false, nil
	}
	if count < cfg.backoff.MaxAttempts {
		return nil, false, nil
	}
	if first.IsZero() {
		first = now
	}
	spent := fmt.Errorf("%w: %d attempts recorded in the attempt store", ErrAttemptsSpent, count)
	out, err = w.deadLetter(msg, n, spent, ClassExhausted, min(count, maxCount), first, now)
	return out, true, err
}
