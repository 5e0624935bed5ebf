package ratelimit

import (
	"context"
	"time"

	"github.com/levee-dev/levee/internal/gcra"
)

// admitKey takes a token from key's bucket, then from the limiter's own
// bucket, within one wait bound for both; if the second fails the first
// is given back when possible.
func (l *Limiter) admitKey(ctx context.Context, key string, wait bool) (fallbackReason, error) {
	e, why, err := l.keys.get(key)
	if err != nil {
		return why, err
	}
	bound := l.waitBound(ctx)
	var t0 time.Time
	if wait && bound > 0 {
		t0 = time.Now()
	}
	kg, err := l.takeWithin(e.b, ctx, wait, bound)
	if err == nil {
		// max_wait (max_hold) bounds the two waits together: the
		// limiter's token gets what the key's wait left of it.
		if wait && bound > 0 {
			bound = max(bound-float64(time.Since(t0)), 1)
		}
		if _, err = l.takeWithin(l.b, ctx, wait, bound); err != nil {
			e.b.Undo(kg)
		}
	}
	l.keys.put(e)
	return why, err
}

func (l *Limiter) take(b *gcra.Bucket, ctx context.Context, wait bool) (gcra.Grant, error) {
	return l.takeWithin(b, ctx, wait, l.waitBound(ctx))
}

// takeWithin is take with the wait bounded by bound (ns; 0 for none).
func (l *Limiter) takeWithin(b *gcra.Bucket, ctx context.Context, wait bool, bound float64) (gcra.Grant, error) {
	var (
		g gcra.Grant
		r gcra.Result
	)
	if wait {
		g, r = b.Wait(ctx, bound)
	} else {
		g, r = b.Try()
	}
	return g, errOf(ctx, r)
}

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
