package hold

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

type key struct{}

// Deadline returns the hold deadline recorded for msg's delivery, if any.
func Deadline(ctx context.Context) (time.Time, bool) {
	d, ok := ctx.Value(key{}).(time.Time)
	return d, ok
}

// Start returns the deadline of a hold of msg that starts at now with
// maxHold (0: no bound of its own): the deadline already recorded for the
// delivery when that is earlier, else now+maxHold, which it records. The
// zero time means no bound at all.
func Start(msg *message.Message, now time.Time, maxHold time.Duration) time.Time {
	ctx := msg.Context()
	recorded, ok := Deadline(ctx)
	if maxHold <= 0 {
		if ok {
			return recorded
		}
		return time.Time{}
	}
	own := now.Add(maxHold)
	if ok && !own.Before(recorded) {
		return recorded
	}
	msg.SetContext(context.WithValue(ctx, key{}, own))
	return own
}

// Record records deadline as msg's hold deadline unless an earlier one is
// recorded; the dlq records the deadline its delivery started with before
// it runs the handler again, so the concerns of that attempt take what is
// left of it.
func Record(msg *message.Message, deadline time.Time) {
	if deadline.IsZero() {
		return
	}
	ctx := msg.Context()
	if recorded, ok := Deadline(ctx); ok && !deadline.Before(recorded) {
		return
	}
	msg.SetContext(context.WithValue(ctx, key{}, deadline))
}

// Left returns how long msg may still be held from now under a bound of
// its own of maxHold (0: none): the shorter of maxHold and what is left of
// the recorded deadline, at least 1ns when a deadline has passed (so that
// a caller bounding a wait by it never mistakes it for "no bound"), and 0
// when neither bounds it. It records nothing: a wait that ends within
// maxHold needs no record.
func Left(ctx context.Context, now time.Time, maxHold time.Duration) time.Duration {
	recorded, ok := Deadline(ctx)
	if !ok {
		return max(maxHold, 0)
	}
	left := max(recorded.Sub(now), 1)
	if maxHold > 0 && maxHold < left {
		return maxHold
	}
	return left
}
