package breaker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee/internal/hold"
)

// Middleware wraps next: while the breaker is closed the message goes
// through (after the drain's token when a drain runs) and its outcome is
// counted; while open or half-open beyond the probes, the message waits
// (no handler call, no error, hence no Nack and no redelivery) until the
// breaker lets it through, its context ends (the context's error is
// returned), the max hold passes (*OpenError) or the Breaker is closed
// (ErrClosed). A panic in next counts as a failure and is re-panicked for
// Recover, further out, to see. Use the same Breaker's Middleware on several
// handlers to share one breaker.
func (b *Breaker) Middleware(next message.HandlerFunc) message.HandlerFunc {
	w := &wrapper{b: b, next: next}
	return w.handle
}

type wrapper struct {
	b     *Breaker
	next  message.HandlerFunc
	attrs atomic.Pointer[handlerAttrs] // resolved on the first wait
}

func (w *wrapper) handle(msg *message.Message) ([]*message.Message, error) {
	b := w.b
	if s := b.word.Load(); s&wordForce == 0 && (s&wordDraining == 0 || b.cfg.separateDrain) {
		if b.fastOK && State(s&wordState) == StateClosed {
			return b.fast(msg, s, w.next)
		}
		if out, _, admitted, err := b.exec(msg, w.next); admitted {
			return out, err
		}
	}
	return w.handleSlow(msg)
}

// exec runs next if the breaker admits the call, and counts its outcome.
// admitted is false when the breaker rejected the call (open, or half-open
// with every probe taken: st says which); next was then not called.
func (b *Breaker) exec(msg *message.Message, next message.HandlerFunc) (out []*message.Message, st State, admitted bool, err error) {
	defer b.flush()
	now := time.Now()
	b.mu.Lock()
	st, gen, age, admitted := b.admitLocked(now)
	b.unlock()
	if !admitted {
		return nil, st, false, nil
	}
	// A panic is counted as a failure without being recovered, so Recover
	// (further out) sees the original panic and its full stack.
	returned := false
	defer func() {
		if !returned {
			b.record(gen, age, verdictFailure, false)
			if st == StateHalfOpen {
				b.wake()
			}
		}
	}()
	var slow bool
	if b.cfg.slowThreshold == 0 {
		out, err = next(msg)
	} else {
		out, err, slow = b.timed(msg, next)
	}
	returned = true
	v := b.classify(err)
	if v == verdictExcluded {
		slow = false
	}
	if slow && v == verdictSuccess {
		v = verdictFailure // a slow success counts as a failure
	}
	b.record(gen, age, v, slow)
	if st == StateHalfOpen {
		// A probe ended: waiters may take its place or see the new state.
		b.wake()
	} else if s := b.word.Load(); err == nil && b.tp != nil && State(s&wordState) == StateClosed && s&wordDraining == 0 {
		b.tp.add()
	}
	return out, st, true, err
}

// fast is the closed-state path unless a slow-call ratio is configured; s
// is the published state word it was chosen on. The call is not announced
// to the machine, and its outcome is reported (under mu) only when it can
// change the state, i.e. a failure, or a success that ends a streak of
// failures (wordStreak). A success after a success changes nothing but the
// request and success totals, so it costs no lock: with only consecutive
// failures it is not counted at all (no clock read either); with a failure
// ratio it is counted in the okWindow, which the trip decision adds to the
// machine's totals. The outcome is dropped if the generation changed
// meanwhile.
func (b *Breaker) fast(msg *message.Message, s uint64, next message.HandlerFunc) (out []*message.Message, err error) {
	gen := s >> wordGenShift
	// A panic is counted without being recovered, so Recover (further out)
	// sees the original panic and its full stack.
	returned := false
	defer func() {
		if !returned {
			b.report(gen, verdictFailure)
		}
	}()
	if b.cfg.slowThreshold > 0 {
		var slow bool
		out, err, slow = b.timed(msg, next)
		returned = true
		if slow && !b.isExcluded(err) && b.isSuccessful(err) {
			b.report(gen, verdictFailure)
			return out, err
		}
	} else {
		out, err = next(msg)
		returned = true
	}
	if s = b.word.Load(); err == nil && s&wordStreak == 0 {
		if b.ok != nil && s>>wordGenShift == gen {
			b.ok.add(b.ok.now())
		}
		if b.tp != nil && s&wordDraining == 0 {
			b.tp.add()
		}
		return out, nil
	}
	b.report(gen, b.classify(err))
	if err == nil && b.tp != nil && b.word.Load()&wordDraining == 0 {
		b.tp.add()
	}
	return out, err
}

// timed runs next and says whether the call was slow: longer than the
// slow-call threshold once the time the layers inside the breaker spent
// waiting in it (a priority slot, a rate-limit token, an inner breaker or
// its drain, a batch: the delivery's wait account, package hold) is taken
// off. Backpressure is not failure: a backlog waiting for its turn is not
// a slow downstream.
func (b *Breaker) timed(msg *message.Message, next message.HandlerFunc) (out []*message.Message, err error, slow bool) {
	w := hold.Account(msg)
	before := w.Load()
	t0 := time.Now()
	out, err = next(msg)
	return out, err, time.Since(t0)-(w.Load()-before) > b.cfg.slowThreshold
}

// report counts an outcome of a call made on the fast path in generation
// gen (dropped if the generation changed since).
func (b *Breaker) report(gen uint64, v verdict) {
	defer b.flush()
	now := time.Now()
	b.mu.Lock()
	b.advanceLocked(now)
	if b.m.gen == gen {
		b.m.onRequest()
		b.countLocked(b.m.age, v, now)
	}
	b.unlock()
}

// DrainMiddleware waits for the drain's token when the Breaker was built
// with WithSeparateDrain; install it further in than Middleware (in the
// ratelimit slot). Without WithSeparateDrain, or without a drain, it returns
// next unchanged. Its wait ends like Middleware's: with the message context
// (its error), at the max hold (*OpenError) or on Close (ErrClosed). A
// message whose wait ends with the breaker open again (it tripped, or was
// forced open, meanwhile) is not run: it gets an *OpenError whose
// RetryAfter is the time left until half-open.
func (b *Breaker) DrainMiddleware(next message.HandlerFunc) message.HandlerFunc {
	if !b.cfg.separateDrain || !b.cfg.drain {
		return next
	}
	w := &wrapper{b: b, next: next}
	return w.handleDrain
}

func (w *wrapper) handleDrain(msg *message.Message) ([]*message.Message, error) {
	if w.b.word.Load()&wordDraining != 0 {
		var ws waitState
		if err := w.ramp(msg, &ws); err != nil {
			return nil, err
		}
		if err := w.b.reopened(&ws); err != nil {
			return nil, err
		}
	}
	return w.next(msg)
}

// reopened returns an *OpenError when the breaker is no longer closed
// after a message's wait in DrainMiddleware: it tripped (or was forced
// open) meanwhile, and the trip ended the drain, which let every waiting
// message go at once. Middleware let the message through before the
// trip; running it now would spend its delivery on a downstream known to
// be down, so it is deferred until half-open instead.
func (b *Breaker) reopened(ws *waitState) error {
	if s := b.word.Load(); s&wordForce == 0 && State(s&wordState) == StateClosed {
		return nil
	}
	now := time.Now()
	b.mu.Lock()
	b.advanceLocked(now)
	st := b.effectiveLocked()
	var until time.Time
	if st == StateOpen && b.force != ForceOpen {
		until = b.m.expiry
	}
	b.unlock()
	b.flush()
	if st == StateClosed {
		return nil
	}
	e := &OpenError{State: st}
	if ws.held {
		e.Held = now.Sub(ws.first)
	}
	if until.After(now) {
		e.After = until.Sub(now)
	}
	return e
}

// waitState is one message's wait across the loop of handleSlow.
type waitState struct {
	held      bool      // the hold started (first wait of any kind)
	first     time.Time // start of the hold
	deadline  time.Time // max hold deadline; zero without a bound
	rampCycle uint64    // the drain cycle the message already waited in
	started   bool      // a wait for the open state is under way
	start     time.Time // its start
	timer     *time.Timer
}

// hold starts the max-hold clock at the message's first wait: the
// deadline is the delivery's (package hold), when a layer further out (the
// dlq's retry) or this one recorded an earlier one, so that the waits of
// every concern together stay within the max hold.
func (ws *waitState) hold(msg *message.Message, now time.Time, maxHold time.Duration) {
	if ws.held {
		return
	}
	ws.held, ws.first = true, now
	ws.deadline = hold.Start(msg, now, maxHold)
}

func (w *wrapper) handleSlow(msg *message.Message) ([]*message.Message, error) {
	b := w.b
	var ws waitState
	defer func() {
		if ws.timer != nil {
			ws.timer.Stop()
		}
	}()
	// The wait ends when the breaker admits the message, before next runs:
	// a running probe is not paused, its run is not part of its wait, and a
	// panic in next cannot leave it counted in levee.breaker.paused.
	admitted := func(msg *message.Message) ([]*message.Message, error) {
		w.endWait(msg, &ws, outcomeAdmitted)
		return w.next(msg)
	}
	for {
		b.mu.Lock()
		ch, force, draining := b.changed, b.force, b.drain.active
		var until time.Time
		if b.m.state == StateOpen {
			until = b.m.expiry
		}
		b.mu.Unlock()

		switch force {
		case ForceClosed:
			w.endWait(msg, &ws, outcomeAdmitted)
			out, err := w.next(msg)
			if err == nil && b.tp != nil {
				b.tp.add() // throughput while closed: the next drain's 100%
			}
			return out, err
		case ForceOpen:
			if err := w.wait(msg, &ws, ch, time.Time{}, StateOpen); err != nil {
				return nil, err
			}
			continue
		}

		if !b.cfg.separateDrain && draining {
			if err := w.ramp(msg, &ws); err != nil {
				return nil, err
			}
		}

		out, st, ok, err := b.exec(msg, admitted)
		if ok {
			return out, err
		}
		if err := w.wait(msg, &ws, ch, until, st); err != nil {
			return nil, err
		}
	}
}

// wait blocks until the breaker's state changes (ch), the open period ends
// (until, when not zero), the max hold passes, the message context ends or
// the Breaker closes. A nil error means: look at the breaker again.
func (w *wrapper) wait(msg *message.Message, ws *waitState, ch <-chan struct{}, until time.Time, st State) error {
	b := w.b
	ctx := msg.Context()
	now := time.Now()
	ws.hold(msg, now, b.cfg.maxHold)
	if !ws.started {
		ws.started, ws.start = true, now
		b.inst.paused.Add(context.Background(), 1, w.handlerAttrs(msg).base)
		spanWaitStart(ctx, st)
	}
	wakeAt := time.Time{}
	if !until.IsZero() {
		wakeAt = until.Add(wakeSlack)
	}
	if !ws.deadline.IsZero() && (wakeAt.IsZero() || ws.deadline.Before(wakeAt)) {
		wakeAt = ws.deadline
	}
	var timeout <-chan time.Time
	if !wakeAt.IsZero() {
		d := wakeAt.Sub(now)
		if d < 0 {
			d = 0
		}
		if ws.timer == nil {
			ws.timer = time.NewTimer(d)
		} else {
			ws.timer.Reset(d)
		}
		timeout = ws.timer.C
	}
	select {
	case <-ch:
		hold.AddWait(ctx, time.Since(now)) // for a slow-call breaker further out
		return nil
	case <-timeout:
		waited := time.Since(now)
		now = now.Add(waited)
		if !ws.deadline.IsZero() && !now.Before(ws.deadline) {
			w.endWait(msg, ws, outcomeMaxHold)
			after := time.Duration(0)
			if st == StateOpen && !until.IsZero() && until.After(now) {
				after = until.Sub(now)
			}
			return &OpenError{State: st, Held: now.Sub(ws.first), After: after}
		}
		// The open period is over: turn half-open.
		hold.AddWait(ctx, waited)
		b.refresh()
		return nil
	case <-ctx.Done():
		w.endWait(msg, ws, outcomeCanceled)
		return ctx.Err()
	case <-b.closed:
		w.endWait(msg, ws, outcomeClosed)
		return ErrClosed
	}
}

func (w *wrapper) endWait(msg *message.Message, ws *waitState, outcome int) {
	if waited, ok := w.leavePaused(msg, ws); ok {
		w.recordWait(msg, waited, outcome)
	}
}

// leavePaused ends the message's count in levee.breaker.paused and returns
// how long it waited; ok is false when it was not waiting.
func (w *wrapper) leavePaused(msg *message.Message, ws *waitState) (waited time.Duration, ok bool) {
	if !ws.started {
		return 0, false
	}
	ws.started = false
	w.b.inst.paused.Add(context.Background(), -1, w.handlerAttrs(msg).base)
	return time.Since(ws.start), true
}

// recordWait records a finished wait with its outcome.
func (w *wrapper) recordWait(msg *message.Message, waited time.Duration, outcome int) {
	w.b.inst.wait.Record(context.Background(), waited.Seconds(), w.handlerAttrs(msg).outcomes[outcome])
	spanWaitDone(msg.Context(), outcome, waited)
}

func (w *wrapper) handlerAttrs(msg *message.Message) *handlerAttrs {
	return loadHandlerAttrs(&w.attrs, msg, w.b.cfg.name)
}
