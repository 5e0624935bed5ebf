package batch

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee"
)

// This file holds the life of a batch: opening it, sealing it on size,
// bytes, linger or hold, dispatching it to a worker or inline, and running
// the batch func.

// entriesLocked returns an empty entries slice for a new batch.
func (b *Batcher) entriesLocked() []entry {
	if k := len(b.freeEnts); k > 0 {
		s := b.freeEnts[k-1]
		b.freeEnts[k-1] = nil
		b.freeEnts = b.freeEnts[:k-1]
		return s
	}
	return make([]entry, 0, b.sizeHint)
}

// openLocked starts a new open batch with its linger (and hold) timer.
func (b *Batcher) openLocked() *pending {
	bt := &pending{
		entries: b.entriesLocked(),
		state:   stateOpen,
		start:   time.Now(),
		attrs:   b.attrs,
		nwake:   b.nwake,
	}
	for i := range bt.nwake {
		bt.wake[i] = make(chan struct{})
	}
	if b.linger == nil {
		b.linger = time.AfterFunc(b.cfg.maxWait, b.lingered)
	} else {
		b.linger.Reset(b.cfg.maxWait)
	}
	if b.cfg.maxHold > 0 {
		bt.holdBy = bt.start.Add(b.cfg.maxHold)
		bt.holdTimer = time.AfterFunc(b.cfg.maxHold, func() { b.held(bt) })
	}
	b.cur = bt
	return bt
}

// holdByLocked brings the batch's hold in to d, the hold of a delivery that
// joins it (package hold: recorded by a layer further out that held it), when
// d comes first: the batch starts by then (held), so that the delivery's
// waits in the stack and in the batch together stay within its max hold.
func (b *Batcher) holdByLocked(bt *pending, d time.Time) {
	if !bt.holdBy.IsZero() && !d.Before(bt.holdBy) {
		return
	}
	bt.holdBy = d
	wait := time.Until(d)
	if bt.holdTimer == nil {
		bt.holdTimer = time.AfterFunc(wait, func() { b.held(bt) })
		return
	}
	bt.holdTimer.Reset(wait)
}

// lingered flushes the open batch once max_wait has passed since its first
// message. The timer is shared by successive batches: a run left over from
// an earlier batch finds the current one too young and does nothing (the
// timer was reset for it).
func (b *Batcher) lingered() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bt := b.cur; bt != nil && time.Since(bt.start) >= b.cfg.maxWait {
		b.sealLocked(bt, reasonWait, false)
	}
}

// held runs at the batch's hold (holdBy): an open batch starts now (reason
// hold) rather than linger past it; a queued one, which no slot took in
// time, fails with *HoldError, a deferral.
func (b *Batcher) held(bt *pending) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bt.state == stateOpen && b.cur == bt {
		if time.Now().Before(bt.holdBy) {
			return // a run left over from before the hold moved
		}
		b.sealLocked(bt, reasonHold, false)
		return
	}
	if bt.state != stateQueued {
		return
	}
	if time.Now().Before(bt.holdBy) {
		return
	}
	herr := &HoldError{Held: time.Since(bt.start), After: b.cfg.maxWait}
	b.inst.left(bt.attrs, leftMaxHold, bt.count)
	if bt.state == stateQueued {
		for i, q := range b.ready {
			if q == bt {
				b.ready = append(b.ready[:i], b.ready[i+1:]...)
				break
			}
		}
	}
	b.failLocked(bt, herr)
	b.checkIdleLocked()
}

// failLocked settles every waiting message of a batch that never ran.
func (b *Batcher) failLocked(bt *pending, err error) {
	if b.cur == bt {
		b.cur = nil
		stopTimer(b.linger)
	}
	stopTimer(bt.holdTimer)
	for i := range bt.entries {
		if !bt.entries[i].removed {
			bt.entries[i].err = err
		}
	}
	wakeAll(bt, b.settleLocked(bt))
}

// removeLocked takes a message that stopped waiting out of a batch that has
// not started.
func (b *Batcher) removeLocked(bt *pending, idx, size int) {
	e := &bt.entries[idx]
	e.removed = true
	e.msg = nil
	bt.count--
	bt.bytes -= size
	if bt.count == 0 && bt.state == stateOpen {
		// Nobody is left: drop the batch. A queued empty batch is skipped
		// when its turn comes.
		b.failLocked(bt, nil)
		b.checkIdleLocked()
	}
}

// sealLocked closes a batch to new messages and queues it for a slot. With
// inline, a caller whose message is in bt asks to run bt itself: when bt
// gets a slot right away, sealLocked returns its run instead of starting a
// goroutine, and the caller must pass it to runInline.
func (b *Batcher) sealLocked(bt *pending, r reason, inline bool) runArgs {
	if b.cur == bt {
		b.cur = nil
		stopTimer(b.linger)
	}
	b.sizeHint = min(max(len(bt.entries), 1), b.cfg.maxSize)
	bt.state = stateQueued
	bt.reason = r
	b.ready = append(b.ready, bt)
	if inline {
		return b.dispatchLocked(bt)
	}
	b.dispatchLocked(nil)
	return runArgs{}
}

// runArgs is a batch handed to the func; bt is nil for none.
type runArgs struct {
	bt   *pending
	ctx  context.Context
	msgs []*message.Message
	ctxs []context.Context
}

// dispatchLocked starts queued batches while slots are free. When inline is
// among them, its run is returned instead of being started on a goroutine.
func (b *Batcher) dispatchLocked(inline *pending) runArgs {
	var mine runArgs
	for b.inFlight < b.cfg.maxInFlight && len(b.ready) > 0 {
		bt := b.ready[0]
		b.ready[0] = nil
		b.ready = b.ready[1:]
		stopTimer(bt.holdTimer)
		if bt.count == 0 {
			b.failLocked(bt, nil)
			continue
		}
		msgs := b.msgsLocked(bt.count)
		var ctxs []context.Context
		if b.tracer != nil {
			// Read message contexts here, while every message still waits:
			// once one gives up, a middleware may replace its context.
			ctxs = make([]context.Context, 0, bt.count)
		}
		for i := range bt.entries {
			e := &bt.entries[i]
			if e.removed {
				continue
			}
			e.pos = len(msgs)
			msgs = append(msgs, e.msg)
			if ctxs != nil {
				ctxs = append(ctxs, memberContext(e.msg))
			}
		}
		bt.sent = len(msgs)
		var ctx context.Context
		ctx, bt.cancel = context.WithCancel(b.base)
		bt.state = stateRunning
		b.inFlight++
		b.wg.Add(1)
		if bt == inline {
			mine = runArgs{bt: bt, ctx: ctx, msgs: msgs, ctxs: ctxs}
			continue
		}
		go b.run(ctx, bt, msgs, ctxs)
	}
	b.checkIdleLocked()
	return mine
}

// msgsLocked returns an empty slice for a batch of n messages, reusing one
// a finished batch func gave back.
func (b *Batcher) msgsLocked(n int) []*message.Message {
	if k := len(b.freeMsgs); k > 0 {
		s := b.freeMsgs[k-1]
		b.freeMsgs[k-1] = nil
		b.freeMsgs = b.freeMsgs[:k-1]
		if cap(s) >= n {
			return s
		}
	}
	return make([]*message.Message, 0, n)
}

// runInline runs a batch on the delivery that filled it. That delivery
// cannot watch its context while the func runs; when no batch watcher
// covers it (self), a context.AfterFunc counts it as given up if its
// context ends meanwhile, exactly as a waiting delivery would.
func (b *Batcher) runInline(ctx context.Context, r runArgs, self bool) {
	if self {
		bt := r.bt
		stop := context.AfterFunc(ctx, func() {
			b.mu.Lock()
			if bt.state == stateRunning {
				bt.giveUpLocked(1)
			}
			b.mu.Unlock()
		})
		defer stop()
	}
	b.run(r.ctx, r.bt, r.msgs, r.ctxs)
}

func (b *Batcher) checkIdleLocked() {
	if b.closed && !b.isIdle && b.cur == nil && b.inFlight == 0 && len(b.ready) == 0 {
		b.isIdle = true
		close(b.idle)
	}
}

// run calls the batch func and settles every message of the batch.
func (b *Batcher) run(ctx context.Context, bt *pending, msgs []*message.Message, ctxs []context.Context) {
	defer b.wg.Done()
	start := time.Now()
	bt.ran = start
	var span trace.Span
	if b.tracer != nil {
		ctx, span = b.startSpan(ctx, bt, ctxs)
	}
	err := b.call(ctx, msgs)
	errs, out, all := resolve(msgs, err)
	if out == outcomePanic {
		b.cfg.logger.Error("levee/batch: batch func panicked", err, watermill.LogFields{"batch_size": len(msgs)})
		if len(msgs) > 1 {
			errs, all = make([]error, len(msgs)), nil
			b.isolate(ctx, msgs, errs, err)
		}
	}
	if span != nil {
		endSpan(span, out, err)
	}
	b.inst.batch(bt.attrs, bt.reason, out, len(msgs), time.Since(start))

	// The entries are this goroutine's while the batch runs (nothing removes
	// an entry of a running batch), so results are set outside the lock.
	if errs != nil || all != nil {
		for i := range bt.entries {
			if e := &bt.entries[i]; !e.removed {
				if errs != nil {
					e.err = errs[e.pos]
				} else {
					e.err = all
				}
			}
		}
	}
	clear(msgs)

	b.mu.Lock()
	cancel := bt.cancel
	wake := b.settleLocked(bt) // a waiter whose context ends from now on reads its result
	b.inFlight--
	if len(b.freeMsgs) < b.cfg.maxInFlight {
		b.freeMsgs = append(b.freeMsgs, msgs[:0])
	}
	b.dispatchLocked(nil)
	b.mu.Unlock()
	// Wake the waiters outside the lock: closing readies every one of them.
	wakeAll(bt, wake)
	cancel()
}

// isolate finds the messages of msgs, a batch that panicked with perr,
// that panic on their own: it runs the func again on each half and
// splits a half that panics again, until a message that panics is alone.
// Only such a message gets a *levee.PanicError (its own, the dlq
// dead-letters it as class panic); every other message gets the verdict
// of the last call that had it, so a healthy neighbour of a poison
// message is not dead-lettered with the poison's panic. A func that
// panics on every message runs 2n-1 times in all; one poison message
// among n costs about 2 log2(n) calls. errs receives the results, one
// per message.
func (b *Batcher) isolate(ctx context.Context, msgs []*message.Message, errs []error, perr error) {
	if len(msgs) == 1 {
		errs[0] = perr
		return
	}
	half := len(msgs) / 2
	for _, r := range [2][2]int{{0, half}, {half, len(msgs)}} {
		// A full slice expression: a func that appends to its slice must
		// not overwrite the other half.
		sub, out := msgs[r[0]:r[1]:r[1]], errs[r[0]:r[1]]
		err := b.call(ctx, sub)
		subErrs, o, all := resolve(sub, err)
		switch {
		case o == outcomePanic:
			b.isolate(ctx, sub, out, err)
		case subErrs != nil:
			copy(out, subErrs)
		default:
			for i := range out {
				out[i] = all
			}
		}
	}
}

// call runs the batch func, turning a panic into a *levee.PanicError.
func (b *Batcher) call(ctx context.Context, msgs []*message.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &levee.PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return b.fn(ctx, msgs)
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
