package hold

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Waits is one delivery's wait account: the time Levee's layers spent
// waiting (for a priority slot, a rate-limit token, a breaker to close or
// its drain) while the message went through them. A breaker that counts
// slow calls times the call minus the waits of the layers inside it, so
// that backpressure is not counted as a slow downstream. It is a context
// that embeds the message's context, so the deadline, cancellation and
// other values are the parent's (no goroutine: Done is the parent's).
type Waits struct {
	context.Context
	ns atomic.Int64
}

type waitsKey struct{}

// Value returns the account itself for its own key, else the parent's
// value.
func (w *Waits) Value(k any) any {
	if k == (waitsKey{}) {
		return w
	}
	return w.Context.Value(k)
}

// Load returns the waits added so far.
func (w *Waits) Load() time.Duration { return time.Duration(w.ns.Load()) }

// Account returns msg's wait account: the one its context carries, else a
// new one that it sets as msg's context (one allocation per delivery).
func Account(msg *message.Message) *Waits {
	ctx := msg.Context()
	if w, ok := ctx.Value(waitsKey{}).(*Waits); ok {
		return w
	}
	w := &Waits{Context: ctx}
	msg.SetContext(w)
	return w
}

// AddWait adds d to the wait account in ctx, if there is one (a breaker
// that counts slow calls is further out); it does nothing otherwise. Call
// it only on the path where a layer actually waited.
func AddWait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	if w := Of(ctx); w != nil {
		w.Add(d)
	}
}

// Of returns the wait account in ctx, nil without one.
func Of(ctx context.Context) *Waits {
	w, _ := ctx.Value(waitsKey{}).(*Waits)
	return w
}

// Add adds d to the account (nothing when d is not positive).
func (w *Waits) Add(d time.Duration) {
	if d > 0 {
		w.ns.Add(int64(d))
	}
}
