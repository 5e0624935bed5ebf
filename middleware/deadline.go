package middleware

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// attemptCtx is the context Timeout gives one attempt: parent with a
// deadline, armed lazily. Until something asks for Done (a select, a child
// context, context.AfterFunc) or Err finds it ended, it holds no timer and
// no child registration on parent: Deadline reports the deadline and Err
// compares the clock with it. Armed, it is a context.WithDeadline of parent
// and behaves exactly as one (Done, Err, Cause, Value, children). Most
// handlers never wait on their context, so most attempts cost one
// allocation and one clock read instead of a timer and a child of the
// router's context.
//
// When the attempt returns the context ends, as context.WithTimeout's does
// when its cancel is called: Canceled, or DeadlineExceeded once its
// deadline has passed. An armed one decides when the attempt returns; an
// unarmed one, watched by nobody, decides when first asked (reading the
// clock at every return would cost as much as the rest of it). It is safe for concurrent use.
type attemptCtx struct {
	parent   context.Context
	deadline time.Time
	armed    atomic.Pointer[armedCtx]
	ended    atomic.Bool // the attempt returned
	mu       sync.Mutex  // serializes arming
}

// armedCtx is the real deadline context an attemptCtx became.
type armedCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newAttemptCtx(parent context.Context, d time.Duration) *attemptCtx {
	return &attemptCtx{parent: parent, deadline: time.Now().Add(d)}
}

// Deadline returns the earlier of the attempt's deadline and parent's.
func (c *attemptCtx) Deadline() (time.Time, bool) {
	if pd, ok := c.parent.Deadline(); ok && pd.Before(c.deadline) {
		return pd, true
	}
	return c.deadline, true
}

// Done arms the context and returns its Done channel.
func (c *attemptCtx) Done() <-chan struct{} { return c.arm().ctx.Done() }

// Err returns nil while the attempt runs and neither its deadline nor
// parent has ended it, without arming; once it would return an error it
// arms, so the error stays the same from then on.
func (c *attemptCtx) Err() error {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Err()
	}
	if !c.ended.Load() && c.parent.Err() == nil && time.Now().Before(c.deadline) {
		return nil
	}
	return c.arm().ctx.Err()
}

// Value looks key up in the armed context, or in parent before arming.
func (c *attemptCtx) Value(key any) any {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Value(key)
	}
	return c.parent.Value(key)
}

// String names the context for debugging, as the context package does.
func (c *attemptCtx) String() string {
	return "middleware.Timeout(" + c.deadline.String() + ")"
}

// arm turns the context into a context.WithDeadline of parent, once; after
// the attempt returned, one that is already canceled (unless parent or the
// deadline ended it first).
func (c *attemptCtx) arm() *armedCtx {
	if a := c.armed.Load(); a != nil {
		return a
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	a := &armedCtx{ctx: ctx, cancel: cancel}
	c.armed.Store(a)
	// Stored before ended is read, and end sets ended before it reads
	// armed: one of the two sees the other, so an armed context is always
	// canceled once the attempt has returned.
	if c.ended.Load() {
		cancel()
	}
	return a
}

// end is called when the attempt returns: an armed context is canceled
// (its timer stopped, its children canceled, its registration on parent
// removed); an unarmed one holds nothing to release.
func (c *attemptCtx) end() {
	c.ended.Store(true)
	if a := c.armed.Load(); a != nil {
		a.cancel()
	}
}
