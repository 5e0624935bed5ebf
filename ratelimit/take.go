package ratelimit

import (
	"context"
	"time"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/gcra"
	"github.com/levee-dev/levee/internal/hold"
)

// startOf returns the start of waits that a bound (ns; 0 for none) covers
// together: now when wait is true and there is a bound, else the zero
// time (no clock read).
func startOf(wait bool, bound float64) time.Time {
	if wait && bound > 0 {
		return time.Now()
	}
	return time.Time{}
}

// leftOf is what is left of bound (ns; 0 for none) after the waits since
// t0 (from startOf); at least 1 ns, so a bound that is used up admits only
// a token that is free at once.
func leftOf(bound float64, t0 time.Time) float64 {
	if t0.IsZero() {
		return bound
	}
	return max(bound-float64(time.Since(t0)), 1)
}

// admitKey takes a token from key's bucket, then from the limiter's own
// bucket, within one wait bound for both; if the second fails the first
// is given back when possible.
func (l *Limiter) admitKey(ctx context.Context, key string, wait bool, bound float64) (fallbackReason, error) {
	e, why, err := l.keys.get(key)
	if err != nil {
		return why, err
	}
	kg, waited, err := l.takeWithin(e.b, ctx, wait, bound)
	if err == nil {
		// max_wait (max_hold) bounds the two waits together: the
		// limiter's token gets what the key's wait left of it (the
		// bucket says how long it waited: no clock read when the key's
		// token was free at once).
		if bound > 0 && waited > 0 {
			bound = max(bound-waited, 1)
		}
		if _, _, err = l.takeWithin(l.b, ctx, wait, bound); err != nil {
			e.b.Undo(kg)
		}
	}
	l.keys.put(e)
	return why, err
}

// takeWithin takes a token of b, waiting (when wait) at most bound (ns; 0
// for none); waited is how long it waited (ns).
func (l *Limiter) takeWithin(b *gcra.Bucket, ctx context.Context, wait bool, bound float64) (g gcra.Grant, waited float64, err error) {
	var r gcra.Result
	if wait {
		g, r = b.Wait(ctx, bound)
	} else {
		g, r = b.TrySpread(spreadBound)
	}
	if err = errOf(ctx, r); err != nil {
		return g, 0, err
	}
	if r.Wait > 0 {
		hold.AddWait(ctx, time.Duration(r.Wait)) // for a slow-call breaker further out
	}
	return g, r.Wait, nil
}

// spreadBound is how far ahead (ns) a rejection's RetryAfter is spread
// at most (see gcra.Bucket.TrySpread): as far as a transport honours.
const spreadBound = float64(levee.MaxRetryAfter)

// errOf turns a bucket's result into the limiter's error: nil, ctx.Err(),
// ErrClosed or a *LimitedError with the expected wait and its reason.
func errOf(ctx context.Context, r gcra.Result) error {
	switch r.Status {
	case gcra.Granted:
		return nil
	case gcra.Canceled:
		return ctx.Err()
	case gcra.NoToken:
		return limited(r.Wait, reasonNoToken)
	case gcra.MaxWait:
		return limited(r.Wait, reasonMaxWait)
	case gcra.Expired:
		return limited(r.Wait, reasonExpired)
	case gcra.Deadline:
		return limited(r.Wait, reasonDeadline)
	}
	return ErrClosed
}
