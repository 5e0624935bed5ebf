package breaker

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/hold"
)

// The fleet breaker's message path: admission, the probe, the outcome.

// Middleware holds next while the fleet is open, lets one probe through on
// the replica holding the probe lease, paces it on the drain ramp, and
// counts its outcome like the local Breaker: nil is a success; a deferral,
// context.Canceled, a permanent or validation error is not counted; any
// other error is a failure. A panic in next counts as a failure and is
// re-panicked for Recover.
func (b *FleetBreaker) Middleware(next message.HandlerFunc) message.HandlerFunc {
	attrs := new(atomic.Pointer[handlerAttrs]) // this handler's, resolved on the first wait
	return func(msg *message.Message) ([]*message.Message, error) {
		probe, err := b.admit(msg, attrs)
		if err != nil {
			return nil, err
		}
		returned := false
		defer func() {
			if !returned {
				b.record(errPanicked, probe)
			}
		}()
		out, herr := next(msg)
		returned = true
		b.record(herr, probe)
		return out, herr
	}
}

// errPanicked stands for a panic in the handler when its outcome is counted.
var errPanicked = errors.New("levee/breaker: handler panicked")

func (b *FleetBreaker) record(err error, probe bool) {
	var res int32
	switch {
	case err == nil:
		res = 1
	case builtinExcluded(err):
	default:
		res = -1
	}
	if probe {
		if res == 0 {
			b.mu.Lock()
			b.armProbeLocked() // not an outcome: the lease may run another probe
			b.mu.Unlock()
			return
		}
		b.result.Store(res)
		b.poke()
		return
	}
	switch res {
	case 1:
		b.ok.Add(1)
	case -1:
		b.fail.Add(1)
	}
}

// admit returns when the message may run; probe is true for the one
// probe of a half-open fleet. Its wait ends at the max hold, or earlier at
// the delivery's when a layer further out recorded one (package hold),
// and it records the hold for the layers further in. The wait is measured
// as the local Breaker's (fleetWait).
func (b *FleetBreaker) admit(msg *message.Message, attrs *atomic.Pointer[handlerAttrs]) (probe bool, err error) {
	st := FleetState(b.word.Load())
	if st == FleetClosed {
		return false, nil
	}
	b.waiting.Add(1) // reports say a message waits: this replica may take the probe lease
	defer b.waiting.Add(-1)
	start := time.Now()
	deadline := hold.Start(msg, start, b.cfg.MaxHold)
	ctx := msg.Context()
	w := fleetWait{b: b, attrs: attrs, msg: msg}
	var expire <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(deadline.Sub(start))
		defer t.Stop()
		expire = t.C
	}
	for {
		b.mu.Lock()
		ch := b.gen
		b.mu.Unlock()
		switch st = FleetState(b.word.Load()); st {
		case FleetClosed:
			w.end(outcomeAdmitted)
			hold.AddWait(ctx, time.Since(start)) // for a slow-call breaker further out
			return false, nil
		case FleetDraining:
			if err := b.takeDrain(ctx, &w, start, deadline); !errors.Is(err, errReopened) {
				if err == nil {
					hold.AddWait(ctx, time.Since(start))
				}
				return false, err
			}
			continue // the fleet opened again meanwhile: wait for it
		case FleetHalfOpen:
			if b.probe.CompareAndSwap(1, 0) {
				w.end(outcomeAdmitted)
				hold.AddWait(ctx, time.Since(start))
				return true, nil
			}
		}
		w.pause(st)
		select {
		case <-ch:
		case <-ctx.Done():
			w.end(outcomeCanceled)
			return false, ctx.Err()
		case <-expire:
			w.end(outcomeMaxHold)
			return false, &OpenError{State: b.localState(), Held: time.Since(start), After: b.cfg.ReportEvery}
		case <-b.done:
			w.end(outcomeClosed)
			return false, ErrClosed
		}
	}
}

// errReopened is takeDrain's answer when the fleet is no longer closed or
// draining once the message has its token: admit makes it wait again.
var errReopened = errors.New("levee/breaker: fleet open again")

// takeDrain waits for a token of the fleet's drain pool, until deadline
// (none when zero); start is when the message began to wait. It returns
// errReopened when the fleet opened again meanwhile.
func (b *FleetBreaker) takeDrain(ctx context.Context, w *fleetWait, start, deadline time.Time) error {
	paused, wasPaused := w.leave()
	left := time.Duration(0)
	if !deadline.IsZero() {
		left = max(time.Until(deadline), time.Nanosecond)
	}
	began := time.Now()
	r := b.drain.Take(ctx, left, true)
	outcome := outcomeMaxHold
	switch r.Status {
	case fleet.Granted, fleet.Bypass:
		outcome = outcomeAdmitted
	case fleet.Canceled:
		outcome = outcomeCanceled
	case fleet.Closed:
		outcome = outcomeClosed
	}
	w.drained(paused, wasPaused, time.Since(began), b.drain.Rate(), outcome)
	switch outcome {
	case outcomeAdmitted:
		if st := FleetState(b.word.Load()); st != FleetClosed && st != FleetDraining {
			// The fleet tripped (or was forced open) while the message
			// waited: it must not run on the downstream that failed.
			if r.Status == fleet.Granted {
				b.drain.Return()
			}
			return errReopened
		}
		return nil
	case outcomeCanceled:
		return ctx.Err()
	case outcomeClosed:
		return ErrClosed
	}
	return &OpenError{State: StateClosed, Held: time.Since(start), After: r.RetryAfter}
}

// localState maps the fleet state to the Breaker's states for errors.
func (b *FleetBreaker) localState() State { return fleetToLocal(FleetState(b.word.Load())) }
