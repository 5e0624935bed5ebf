package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/gcra"
	"github.com/levee-dev/levee/internal/hold"
	"github.com/levee-dev/levee/internal/trunc"
)

// Limiter is a token-bucket rate limiter for message handlers: wait or
// reject mode, optional per-key limits and an optional adaptive rate. Build
// it with New, install it with router.AddMiddleware(l.Middleware) (or
// through middleware.Stack), and keep it to change the rate at run time
// (SetRate, SetBurst) and to Close it.
//
// A Limiter is safe for concurrent use. One Limiter shared by several
// handlers limits their combined rate.
type Limiter struct {
	b       *gcra.Bucket
	mode    Mode
	maxWait float64 // ns, 0 for none
	keys    *keyRegistry
	adapt   *adaptive
	ins     *instruments
	fleet   *fleetLimit // nil without WithFleet
	name    string
	logger  watermill.LoggerAdapter
	// plain is true when Middleware needs no keys, adaptation or metrics.
	plain     bool
	closeOnce sync.Once
}

// New builds a Limiter. Without options it is unlimited (a pass-through
// until SetRate). It returns an error wrapping ErrInvalidConfig for an invalid
// setting: a NaN, negative or infinite rate, a negative burst, a burst of 0
// with a positive rate, a negative max_wait, max_hold or catch-up, an
// incomplete per-key setup, or invalid adaptive bounds; it returns the
// meter's error if an instrument cannot be created.
func New(opts ...Option) (*Limiter, error) {
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, err
	}
	unlimited, rate := c.unlimited, c.rate
	if c.adaptive != nil && !c.rateSet {
		unlimited, rate = false, c.adaptive.Max
	}
	l := &Limiter{
		b:       gcra.New(unlimited, rate, max(c.burst, 1), c.catchUp),
		mode:    c.mode,
		maxWait: c.maxWaitNS(),
		name:    c.name,
		logger:  c.logger,
	}
	if c.keyed != nil {
		l.keys = newKeyRegistry(c.keyed, c.catchUp)
	}
	if c.adaptive != nil {
		l.adapt = newAdaptive(*c.adaptive, l.b)
	}
	ins, err := newInstruments(c.mp, c.name, l)
	if err != nil {
		return nil, fmt.Errorf("levee/ratelimit: metrics: %w", err)
	}
	l.ins = ins
	if c.fleet != nil {
		ctl, err := fleet.NewTelemetry(c.mp, c.logger, "ratelimit", c.name)
		if err != nil {
			return nil, fmt.Errorf("levee/ratelimit: metrics: %w", err)
		}
		if l.fleet, err = newFleetLimit(c.fleet, ctl); err != nil {
			l.Close()
			return nil, err
		}
	}
	l.plain = l.keys == nil && l.adapt == nil && l.ins == nil && (l.fleet == nil || l.fleet.keys == nil)
	return l, nil
}

// Wait blocks until the limiter's own bucket grants a token and returns
// nil, whatever the mode (per-key limits are not involved; see WaitKey).
// It returns ctx.Err() when ctx ends first, a *LimitedError (wrapping
// ErrLimited) when the expected wait exceeds max_wait/max_hold or would
// outlast ctx's deadline, and ErrClosed after Close. A token granted at the
// moment ctx ends is given back when nothing was scheduled after it.
// Waiters are served in FIFO order. Given a message's context, the wait is
// added to the delivery's wait account, as the middleware's is: a
// slow-call breaker further out does not count it as the handler's time.
func (l *Limiter) Wait(ctx context.Context) error {
	_, r := l.b.Wait(ctx, l.waitBound(ctx))
	if r.OK() && r.Wait > 0 {
		hold.AddWait(ctx, time.Duration(r.Wait))
	}
	return errOf(ctx, r)
}

// WaitKey is Wait for a message with per-key key: it waits for a token of
// key's bucket (FallbackKey for "") and then for one of the limiter's own
// bucket. Without per-key limits it is Wait.
func (l *Limiter) WaitKey(ctx context.Context, key string) error {
	if l.keys == nil {
		return l.Wait(ctx)
	}
	if len(key) > MaxKeyLen {
		key = FallbackKey
	}
	_, err := l.admitKey(ctx, key, true, l.waitBound(ctx))
	return err
}

// Allow takes a token if one is free now and nobody is waiting ahead; it
// never waits. Per-key limits are not involved.
func (l *Limiter) Allow() bool {
	_, r := l.b.Try()
	return r.OK()
}

// Reserve takes a token if one is free now (nil), or returns a
// *LimitedError whose RetryAfter is the expected wait, as reject mode does:
// the refusals one after the other are told the tokens to come one by one
// (the first the next token, the next the one after...), up to
// levee.MaxRetryAfter, without reserving any (the token goes to whoever
// asks first), so that callers that come back at their RetryAfter come
// back one at a time.
// It returns ErrClosed after Close. Per-key limits are not involved.
func (l *Limiter) Reserve() error {
	_, r := l.b.TrySpread(spreadBound)
	return errOf(context.Background(), r)
}

// SetRate changes the limiter's own rate at run time, safely under load:
// permits already owed stay owed, and queued waiters are rescheduled at
// once. r is events per second: 0 admits nothing, +Inf removes the limit.
// SetRate has no error result so that a ramp can drive it; a NaN or
// negative r is treated as 0 (fail closed, never over-admitting). With an
// adaptive limit, r is clamped to [Min, Max] (NaN gives Min) and the
// controller carries on from it in a fresh window.
func (l *Limiter) SetRate(r float64) {
	if l.adapt != nil {
		if math.IsNaN(r) {
			r = l.adapt.cfg.Min
		}
		r = math.Min(math.Max(r, l.adapt.cfg.Min), l.adapt.cfg.Max)
		defer l.adapt.reset(time.Now())
	}
	l.b.SetRate(r)
}

// SetBurst changes the burst at run time; a value below 1 is treated as 1.
func (l *Limiter) SetBurst(n int) {
	l.b.Update(func(s *gcra.State) bool {
		s.Burst = max(n, 1)
		return true
	})
}

// Rate returns the current rate in events per second; +Inf when unlimited.
func (l *Limiter) Rate() float64 {
	s := l.b.Snapshot()
	if s.Unlimited {
		return math.Inf(1)
	}
	return s.Rate
}

// Burst returns the current burst.
func (l *Limiter) Burst() int {
	return l.b.Snapshot().Burst
}

// Mode returns the limiter's mode.
func (l *Limiter) Mode() Mode { return l.mode }

// Keys returns the number of live per-key buckets (0 without per-key
// limits; FallbackKey not counted). It first drops the keys that expired
// (see WithKeyIdle), so the count is true without traffic.
func (l *Limiter) Keys() int {
	if l.keys == nil {
		return 0
	}
	return l.keys.len()
}

// Close fails pending waits with ErrClosed, makes later ones fail the same
// way, stops the limiter's timers and unregisters its metrics callback. It
// is idempotent and returns nil.
func (l *Limiter) Close() error {
	l.closeOnce.Do(func() {
		l.b.Close()
		if l.keys != nil {
			l.keys.close()
		}
		if l.ins != nil {
			_ = l.ins.reg.Unregister()
		}
		if l.fleet != nil {
			l.fleet.close()
		}
	})
	return nil
}

// Middleware limits next. In ModeWait a message waits for a token (see
// Wait); in ModeReject it fails at once with a *LimitedError when no token
// is free. With per-key limits the message first takes a token of its
// key's bucket. A message that is not admitted is never passed to next:
// its error makes the router Nack it (with a delayed redelivery where the
// transport offers one), so nothing is lost. With an adaptive limit the
// latency and outcome of next feed the controller.
func (l *Limiter) Middleware(next message.HandlerFunc) message.HandlerFunc {
	wait := l.mode == ModeWait
	if l.plain {
		return l.plainMiddleware(next, wait)
	}
	var attrs atomic.Pointer[handlerAttrs]
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := msg.Context()
		var start time.Time
		if l.ins != nil {
			start = time.Now()
		}
		var (
			err     error
			fg      fleetGrant
			fleetFB fallbackReason
		)
		bound := l.waitBound(ctx)
		if l.fleet != nil {
			// max_wait bounds the fleet's wait and the local ones together
			t0 := startOf(wait, bound)
			fg, fleetFB, err = l.fleet.take(ctx, msg, time.Duration(bound), wait)
			if err != nil {
				if fleetFB != fbNone {
					l.noteFallback(&attrs, msg, fleetFB, nil)
				}
				l.noteRejected(ctx, &attrs, msg, err)
				return nil, err
			}
			bound = leftOf(bound, t0)
		}
		if l.keys != nil {
			key, why, pv := l.keys.keyOf(msg)
			var why2 fallbackReason
			why2, err = l.admitKey(ctx, key, wait, bound)
			if why == fbNone {
				why = why2
			}
			if why == fbNone {
				why = fleetFB // one count per pass: the local key's reason, else the fleet key's
			}
			if why != fbNone {
				l.noteFallback(&attrs, msg, why, pv)
			}
		} else {
			if fleetFB != fbNone {
				l.noteFallback(&attrs, msg, fleetFB, nil)
			}
			_, _, err = l.takeWithin(l.b, ctx, wait, bound)
		}
		if err != nil {
			if l.fleet != nil {
				l.fleet.undo(fg)
			}
			l.noteRejected(ctx, &attrs, msg, err)
			return nil, err
		}
		if l.ins != nil {
			l.ins.wait.Record(ctx, time.Since(start).Seconds(), resolveAttrs(&attrs, l.name, msg).base)
		}
		if l.adapt == nil {
			return next(msg)
		}
		return l.adaptiveCall(ctx, next, msg)
	}
}

// adaptiveCall runs next and reports its latency and outcome to the
// adaptive controller. A panic in next is a failed call; it leaves the
// in-flight count as it was and reaches Recover further out. A deferral
// (a handler's levee.Defer, a batcher's) is no call of the downstream:
// backpressure, not failure, and its latency is not the downstream's, so
// the controller does not see it (as the breaker counts it neither way),
// nor counts its permit as used.
func (l *Limiter) adaptiveCall(ctx context.Context, next message.HandlerFunc, msg *message.Message) (out []*message.Message, herr error) {
	a := l.adapt
	a.inflight.Add(1)
	t0 := time.Now()
	returned := false
	defer func() {
		a.inflight.Add(-1)
		if returned && herr != nil && levee.IsDeferral(herr) {
			a.deferredCall()
			return
		}
		now := time.Now()
		if d, ok := a.observe(now.Sub(t0), !returned || failed(herr), now); ok {
			l.noteAdjust(ctx, d)
		}
	}()
	out, herr = next(msg)
	returned = true
	return out, herr
}

// plainMiddleware is Middleware without keys, adaptation or metrics: a
// fleet token (if any), then a local one.
func (l *Limiter) plainMiddleware(next message.HandlerFunc, wait bool) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		var fg fleetGrant
		bound := -1.0 // not read yet
		if l.fleet != nil {
			// max_wait bounds the fleet's wait and the local one together
			bound = l.waitBound(msg.Context())
			t0 := startOf(wait, bound)
			var err error
			// no metrics here: the fallback reason is not counted
			if fg, _, err = l.fleet.take(msg.Context(), msg, time.Duration(bound), wait); err != nil {
				return nil, err
			}
			bound = leftOf(bound, t0)
		}
		if l.b.Fast() {
			return next(msg) // unlimited: no lock, no clock
		}
		ctx := msg.Context()
		var r gcra.Result
		if wait {
			if bound < 0 {
				bound = l.waitBound(ctx)
			}
			_, r = l.b.Wait(ctx, bound)
		} else {
			_, r = l.b.TrySpread(spreadBound)
		}
		if !r.OK() {
			if l.fleet != nil {
				l.fleet.undo(fg)
			}
			return nil, errOf(ctx, r)
		}
		if r.Wait > 0 {
			hold.AddWait(ctx, time.Duration(r.Wait)) // for a slow-call breaker further out
		}
		return next(msg)
	}
}

func (l *Limiter) noteRejected(ctx context.Context, attrs *atomic.Pointer[handlerAttrs], msg *message.Message, err error) {
	if l.ins != nil {
		var le *LimitedError
		if errors.As(err, &le) {
			l.ins.rejected.Add(ctx, 1, resolveAttrs(attrs, l.name, msg).rejected[le.reason])
		}
	}
}

func (l *Limiter) noteFallback(attrs *atomic.Pointer[handlerAttrs], msg *message.Message, why fallbackReason, pv any) {
	if l.ins != nil {
		l.ins.fallbacks.Add(msg.Context(), 1, resolveAttrs(attrs, l.name, msg).fallbacks[why])
	}
	if why == fbPanic && l.logger != nil {
		l.logger.Error("levee/ratelimit: key function panicked; using the fallback key",
			trunc.LogError(fmt.Errorf("panic: %v", pv)), watermill.LogFields{"limiter": l.name, "message_uuid": trunc.Log(msg.UUID)})
	}
}

func (l *Limiter) noteAdjust(ctx context.Context, d decision) {
	if l.ins != nil {
		o := l.ins.down
		if d.increase {
			o = l.ins.up
		}
		l.ins.adjust.Add(ctx, 1, o)
	}
	if l.logger != nil {
		l.logger.Debug("levee/ratelimit: adaptive limit changed",
			watermill.LogFields{"limiter": l.name, "from": d.old, "to": d.rate})
	}
}
