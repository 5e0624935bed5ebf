package middleware

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Timeout bounds one handler attempt. Unlike Watermill's Timeout it restores
// the message's original context when the attempt returns, so the layers
// outside it (retry waits, the dead-letter publish) do not inherit an
// expired context. It is safe for concurrent use.
type Timeout struct {
	d time.Duration
}

// NewTimeout returns a Timeout of d. A d that is zero or negative returns an
// error wrapping ErrInvalidConfig.
func NewTimeout(d time.Duration) (*Timeout, error) {
	if d <= 0 {
		return nil, fmt.Errorf("%w: timeout must be positive, got %s", ErrInvalidConfig, d)
	}
	return &Timeout{d: d}, nil
}

// Duration returns the bound of one attempt.
func (t *Timeout) Duration() time.Duration { return t.d }

// Middleware gives next a message context that ends after the timeout (or
// earlier, with the original), and puts the original context back when next
// returns. The handler is expected to watch msg.Context(); a handler that
// ignores it still runs to completion and its result stands.
//
// The context behaves as context.WithTimeout's (Deadline, Done, Err,
// Cause, Value, parent cancellation, children canceled when the attempt
// returns), but its timer is armed only when something waits on it: an
// attempt whose handler never selects on Done costs one allocation and
// one clock read.
func (t *Timeout) Middleware(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		orig := msg.Context()
		ctx := newAttemptCtx(orig, t.d)
		msg.SetContext(ctx)
		defer func() {
			msg.SetContext(orig)
			ctx.end()
		}()
		return next(msg)
	}
}
