package ratelimit

import (
	"context"
	"time"

	"github.com/levee-dev/levee/internal/hold"
)

// waitBound is the longest a wait with ctx may last (ns, 0 for none):
// max_wait or max_hold, or what is left of the delivery's hold when a
// concern further out (the breaker, the priority queue, the dlq's retry)
// recorded one (package hold), whichever is shorter.
func (l *Limiter) waitBound(ctx context.Context) float64 {
	if _, ok := hold.Deadline(ctx); !ok {
		return l.maxWait // no clock read on the path of every message
	}
	return float64(hold.Left(ctx, time.Now(), time.Duration(l.maxWait)))
}
