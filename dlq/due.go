package dlq

import (
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// This file holds the wait of a redelivered message whose deferred retry
// is not due yet.

// waitPending sweeps the attempt table's expired records (at most once per
// sweepEvery) and looks the message up in it: known says the
// table has a record of it. A deferred retry that is not due yet is waited
// for; a message whose dead letter failed to publish is dead-lettered again
// without another handler call (done, with out and err to return). It and
// forget stay out of handle's frame (noinline): see middleware/stackroom.go.
//
//go:noinline
func (w *wrapped) waitPending(msg *message.Message, start time.Time) (known bool, out []*message.Message, done bool, err error) {
	w.r.table.sweep(start, sweepEvery)
	rec, ok := w.r.table.get(w.key(msg))
	if !ok {
		return false, nil, false, nil
	}
	if !rec.notBefore.IsZero() {
		if err := w.waitDue(msg, rec, start); err != nil {
			return true, nil, true, err
		}
		w.recordHold(msg, start)
	}
	if rec.publishFails > 0 && rec.class != "" && rec.err != nil {
		out, err := w.deadLetterAgain(msg, rec)
		return true, out, true, err
	}
	return true, nil, false, nil
}

//go:noinline
func (w *wrapped) forget(msg *message.Message) { w.r.table.forget(w.key(msg)) }

// waitDue makes a redelivered message wait until its deferred retry is due.
// When that is further away than max hold, it waits max hold and Nacks the
// message again with the rest as RetryAfter: a transport without native
// delay (which redelivers at once) spins at most once per max hold, and the
// handler is not called early. That Nack is a deferral (a levee.Deferral,
// counted in levee.dlq.retries_deferred, or in levee.dlq.deferrals when
// the wait is a deferral's RetryAfter): the delivery made no attempt.
func (w *wrapped) waitDue(msg *message.Message, rec record, start time.Time) error {
	wait := rec.notBefore.Sub(start)
	if wait <= 0 {
		return nil
	}
	hold := w.r.cfg.maxHold
	early := hold > 0 && wait > hold
	if early {
		wait = hold
	}
	if err := sleep(msg, wait); err != nil {
		return fmt.Errorf("%w: %w", ErrInterrupted, errors.Join(rec.err, err))
	}
	if early {
		rec.deferrals = min(rec.deferrals, maxCount) + 1
		w.r.table.put(w.key(msg), rec)
		if opt := w.resolve(msg).attrs.base; rec.dueByDeferral {
			w.r.ins.deferrals.Add(msg.Context(), 1, opt)
		} else {
			w.r.ins.deferred.Add(msg.Context(), 1, opt)
		}
		return &RetryLaterError{Delay: time.Until(rec.notBefore), Attempts: rec.attempts, Err: rec.err, noAttempt: true}
	}
	return nil
}
