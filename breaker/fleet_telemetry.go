package breaker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// fleetWait is one message's wait in FleetBreaker.admit, measured with the
// local Breaker's instruments and span events: levee.breaker.paused while
// the fleet is open or half-open, levee.breaker.wait.duration with the
// wait's outcome (a message that waited and then takes a drain token gets
// that token's outcome), levee.breaker.drain.wait.duration for a drain
// token.
type fleetWait struct {
	b       *FleetBreaker
	attrs   *atomic.Pointer[handlerAttrs]
	msg     *message.Message
	start   time.Time
	started bool
}

func (w *fleetWait) handlerAttrs() *handlerAttrs {
	return loadHandlerAttrs(w.attrs, w.msg, w.b.cfg.Name)
}

// pause counts the message in levee.breaker.paused, once.
func (w *fleetWait) pause(st FleetState) {
	if w.started {
		return
	}
	w.started, w.start = true, time.Now()
	w.b.waits.paused.Add(context.Background(), 1, w.handlerAttrs().base)
	spanWaitStart(w.msg.Context(), fleetToLocal(st))
}

// leave ends the message's count in levee.breaker.paused and returns how
// long it waited; ok is false when it was not waiting.
func (w *fleetWait) leave() (waited time.Duration, ok bool) {
	if !w.started {
		return 0, false
	}
	w.started = false
	w.b.waits.paused.Add(context.Background(), -1, w.handlerAttrs().base)
	return time.Since(w.start), true
}

// record records a finished wait with its outcome.
func (w *fleetWait) record(waited time.Duration, outcome int) {
	w.b.waits.wait.Record(context.Background(), waited.Seconds(), w.handlerAttrs().outcomes[outcome])
	spanWaitDone(w.msg.Context(), outcome, waited)
}

// end leaves the pause, if any, and records it with outcome.
func (w *fleetWait) end(outcome int) {
	if waited, ok := w.leave(); ok {
		w.record(waited, outcome)
	}
}

// drained records a drain token's wait, and the pause before it (left
// when the token wait began) with the token's outcome.
func (w *fleetWait) drained(paused time.Duration, wasPaused bool, took time.Duration, rate float64, outcome int) {
	if wasPaused {
		w.record(paused, outcome)
	}
	w.b.waits.drainWait.Record(context.Background(), took.Seconds(), w.handlerAttrs().base)
	spanDrainWait(w.msg.Context(), rate, took)
}

// fleetToLocal maps a fleet state to the Breaker's states (for errors and
// span events).
func fleetToLocal(st FleetState) State {
	switch st {
	case FleetOpen:
		return StateOpen
	case FleetHalfOpen:
		return StateHalfOpen
	}
	return StateClosed
}
