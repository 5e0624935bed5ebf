package breaker

import (
	"context"

	"golang.org/x/time/rate"
)

// TEMPORARY until feat/ratelimit is merged.
type tmpLimiter struct{ l *rate.Limiter }

func (t tmpLimiter) Wait(ctx context.Context) error { return t.l.Wait(ctx) }
func (t tmpLimiter) SetRate(r float64)              { t.l.SetLimit(rate.Limit(r)) }

func newRampLimiter() (rampLimiter, error) {
	return tmpLimiter{rate.NewLimiter(1, 1)}, nil
}
