package breaker

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/gcra"
	"github.com/levee-dev/levee/internal/hold"
)

// ramp waits for the drain's token. The wait ends early with the message
// context, on Close, or at the max hold (the delivery's: see
// waitState.hold).
func (w *wrapper) ramp(msg *message.Message, ws *waitState) error {
	b := w.b
	now := time.Now()
	lim, r, cycle := b.rampStep(now, ws.rampCycle)
	if lim == nil {
		return nil
	}
	ws.rampCycle = cycle
	// The breaker let the message through: it is no longer paused. Its
	// wait is recorded once the drain's token decides how it ended.
	waited, wasPaused := w.leavePaused(msg, ws)
	ws.hold(msg, now, b.cfg.maxHold)
	deadline := ws.deadline
	mctx := msg.Context()
	ctx := mctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(mctx, deadline)
		defer cancel()
	}
	_, res := lim.Wait(ctx, 0)
	drained := time.Since(now)
	outcome := outcomeAdmitted
	switch {
	case res.OK():
	case mctx.Err() != nil:
		outcome = outcomeCanceled
	case res.Status == gcra.Closed:
		outcome = outcomeClosed
	default:
		outcome = outcomeMaxHold
	}
	if wasPaused {
		w.recordWait(msg, waited, outcome)
	}
	b.inst.drainWait.Record(context.Background(), drained.Seconds(), w.handlerAttrs(msg).base)
	spanDrainWait(mctx, r, drained)
	switch outcome {
	case outcomeAdmitted:
		hold.AddWait(mctx, drained) // for a slow-call breaker further out
		return nil
	case outcomeCanceled:
		return mctx.Err()
	case outcomeClosed:
		return ErrClosed
	}
	// The drain's slot for it comes after the hold: it asks to come back
	// then (without that delay a transport that redelivers at once, such
	// as RabbitMQ, spun it through the breaker until the drain caught up).
	after := time.Duration(0)
	if res.Status == gcra.Deadline && res.Wait > 0 {
		after = time.Duration(res.Wait)
	}
	return &OpenError{State: StateClosed, Held: time.Since(ws.first), After: after}
}
