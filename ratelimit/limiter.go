package ratelimit

import (
	"context"
	"math"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Limiter is a token-bucket rate limiter for message handlers, with wait or
// reject modes. Build it with New, install it with
// router.AddMiddleware(l.Middleware) (or through middleware.Stack), and keep
// it to change the rate at run time (SetRate, SetBurst) and to Close it.
//
// A Limiter is safe for concurrent use. One Limiter shared by several
// handlers limits their combined rate.
type Limiter struct {
	b       *bucket
	mode    Mode
	maxWait float64 // ns, 0 for none
}

// New builds a Limiter. Without options it is unlimited (a pass-through
// until SetRate). It returns an error wrapping ErrInvalid for an invalid
// setting: a NaN, negative or infinite rate, a negative burst, a burst of 0
// with a positive rate, a negative max_wait, max_hold or catch-up.
func New(opts ...Option) (*Limiter, error) {
	c := newConfig(opts)
	if err := c.validate(); err != nil {
		return nil, err
	}
	burst := c.burst
	if burst < 1 {
		burst = 1 // only reachable with rate 0 or unlimited, where burst is moot
	}
	l := &Limiter{
		b:       newBucket(c.unlimited, c.rate, burst, c.catchUp),
		mode:    c.mode,
		maxWait: c.maxWaitNS(),
	}
	return l, nil
}

// Wait blocks until a token is granted and returns nil, whatever the mode.
// It returns ctx.Err() when ctx ends first, a *LimitedError (wrapping
// ErrLimited) when the expected wait exceeds max_wait/max_hold or would
// outlast ctx's deadline, and ErrClosed after Close. A token granted at the
// moment ctx ends is given back when nothing was scheduled after it.
// Waiters are served in FIFO order.
func (l *Limiter) Wait(ctx context.Context) error {
	return l.b.wait(ctx, l.maxWait)
}

// Allow takes a token if one is free now and nobody is waiting ahead; it
// never waits.
func (l *Limiter) Allow() bool { return l.b.try() == nil }

// Reserve takes a token if one is free now (nil), or returns a
// *LimitedError whose RetryAfter is the expected wait, as reject mode does.
// It returns ErrClosed after Close.
func (l *Limiter) Reserve() error { return l.b.try() }

// SetRate changes the rate at run time, safely under load: permits already
// owed stay owed, and queued waiters are rescheduled at once. r is events
// per second: 0 admits nothing, +Inf removes the limit. SetRate has no error
// result so that a ramp can drive it; a NaN or negative r is treated as 0
// (fail closed, never over-admitting).
func (l *Limiter) SetRate(r float64) {
	_, _, burst := l.b.snapshot()
	switch {
	case math.IsInf(r, 1):
		l.b.set(true, 0, burst)
	case math.IsNaN(r) || r < 0:
		l.b.set(false, 0, burst)
	default:
		l.b.set(false, r, burst)
	}
}

// SetBurst changes the burst at run time; a value below 1 is treated as 1.
func (l *Limiter) SetBurst(n int) {
	if n < 1 {
		n = 1
	}
	l.b.mu.Lock()
	defer l.b.mu.Unlock()
	now := l.b.nowLocked()
	l.b.setLocked(now, l.b.unlimited, l.b.rate, n)
	if !l.b.closed {
		l.b.releaseLocked(now)
		l.b.armLocked(now)
	}
}

// Rate returns the current rate in events per second; +Inf when unlimited.
func (l *Limiter) Rate() float64 {
	unlimited, r, _ := l.b.snapshot()
	if unlimited {
		return math.Inf(1)
	}
	return r
}

// Burst returns the current burst.
func (l *Limiter) Burst() int {
	_, _, b := l.b.snapshot()
	return b
}

// Mode returns the limiter's mode.
func (l *Limiter) Mode() Mode { return l.mode }

// Close fails pending waits with ErrClosed and makes later ones fail the
// same way; it stops the limiter's timer. It is idempotent and returns nil.
func (l *Limiter) Close() error {
	l.b.close()
	return nil
}

// Middleware limits next. In ModeWait a message waits for a token (see
// Wait); in ModeReject it fails at once with a *LimitedError when no token
// is free. A message that is not admitted is never passed to next: its
// error makes the router Nack it, so nothing is lost.
func (l *Limiter) Middleware(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		var err error
		if l.mode == ModeReject {
			err = l.b.try()
		} else {
			err = l.b.wait(msg.Context(), l.maxWait)
		}
		if err != nil {
			return nil, err
		}
		return next(msg)
	}
}
