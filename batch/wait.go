package batch

import "context"

// This file holds a delivery's wait for the result of its batch: parking,
// giving up when its context ends, and waking the waiters.

// await waits for the result of entry idx of bt, parking on ch. self is
// the delivery's Done channel when it watches its own context (no batch
// watcher covers it), nil otherwise.
func (b *Batcher) await(ctx context.Context, bt *pending, idx, size int, ch, self <-chan struct{}) error {
	for {
		if self == nil {
			<-ch
		} else {
			select {
			case <-ch:
			case <-self:
				self = nil
				var err error
				var over bool
				if ch, err, over = b.giveUp(ctx, bt, idx, size); over {
					return err
				}
				continue
			}
		}
		if bt.finished.Load() {
			return b.result(bt, idx)
		}
		// Woken so that entries a watcher removed can leave: this one's
		// own, or someone else's (then wait again on the fresh channel).
		b.mu.Lock()
		if bt.state == stateDone {
			b.mu.Unlock()
			return b.result(bt, idx)
		}
		if e := &bt.entries[idx]; e.removed {
			err := e.err
			bt.left++
			b.mu.Unlock()
			return err
		}
		ch = bt.wake[idx%bt.nwake]
		b.mu.Unlock()
	}
}

// giveUp handles the end of the context of a delivery that watches its
// own: it leaves a batch that has not started (over, with the context
// error) or, when the func has the message, counts as given up and returns
// the channel to wait on for the verdict.
func (b *Batcher) giveUp(ctx context.Context, bt *pending, idx, size int) (<-chan struct{}, error, bool) {
	b.mu.Lock()
	switch bt.state {
	case stateDone:
		b.mu.Unlock()
		return nil, b.result(bt, idx), true
	case stateOpen, stateQueued:
		bt.left++
		b.removeLocked(bt, idx, size)
		b.inst.left(bt.attrs, leftCanceled, 1)
		b.mu.Unlock()
		return nil, leftErr(ctx.Err()), true
	}
	// The func has the message: its outcome is unknown until the func
	// returns, so wait for it rather than Nack (the message could be written
	// and then redelivered) or ack (it might not be written). Returning now
	// would also let outer middlewares (retry, dead-lettering) modify the
	// message while the func reads it. Once every message of the batch has
	// given up, the func's context is cancelled, which bounds this wait.
	bt.giveUpLocked(1)
	ch := bt.wake[idx%bt.nwake]
	b.mu.Unlock()
	return ch, nil, false
}

// watchLocked makes sure a batch watcher covers done (the Done channel of
// ctx) and reports whether one does: false when the batch already has
// maxWatch watchers for other channels.
func (b *Batcher) watchLocked(bt *pending, ctx context.Context, done <-chan struct{}) bool {
	for i := range bt.nwatch {
		if bt.watch[i].done == done {
			return true
		}
	}
	if bt.nwatch == maxWatch {
		return false
	}
	bt.watch[bt.nwatch] = watcher{done: done, stop: context.AfterFunc(ctx, func() { b.ctxEnded(bt, done, ctx) })}
	bt.nwatch++
	return true
}

// ctxEnded runs when the context behind a batch watcher ends: the messages
// waiting on it leave a batch that has not started, or count as given up
// when the func has them.
func (b *Batcher) ctxEnded(bt *pending, done <-chan struct{}, ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch bt.state {
	case stateOpen, stateQueued:
		err := leftErr(ctx.Err())
		n := 0
		for i := range bt.entries {
			e := &bt.entries[i]
			if e.removed || e.done != done {
				continue
			}
			e.removed = true
			e.err = err
			bt.count--
			bt.bytes -= len(e.msg.Payload)
			e.msg = nil
			n++
		}
		if n == 0 {
			return
		}
		b.inst.left(bt.attrs, leftCanceled, n)
		if bt.count == 0 && bt.state == stateOpen {
			b.failLocked(bt, nil)
			b.checkIdleLocked()
			return
		}
		// Wake everyone: the removed leave, the others park again.
		old := bt.wake
		for i := range bt.nwake {
			bt.wake[i] = make(chan struct{})
			close(old[i])
		}
	case stateRunning:
		n := 0
		for i := range bt.entries {
			if e := &bt.entries[i]; !e.removed && e.done == done {
				n++
			}
		}
		bt.giveUpLocked(n)
	}
}

// giveUpLocked counts n messages of a running batch whose context ended;
// once all of them have, the func's context is cancelled.
func (bt *pending) giveUpLocked(n int) {
	bt.gaveUp += n
	if bt.gaveUp >= bt.sent {
		bt.cancel()
	}
}

// settleLocked marks a batch done (its results are set) and stops its
// watchers. It returns the wake channels, which the caller closes once
// finished is set.
func (b *Batcher) settleLocked(bt *pending) [maxWake]chan struct{} {
	bt.readers.Store(int32(len(bt.entries) - bt.left))
	bt.state = stateDone
	for i := range bt.nwatch {
		bt.watch[i].stop()
		bt.watch[i] = watcher{}
	}
	bt.nwatch = 0
	return bt.wake
}

// wakeAll ends every wait on a settled batch.
func wakeAll(bt *pending, wake [maxWake]chan struct{}) {
	bt.finished.Store(true)
	for i := range bt.nwake {
		close(wake[i])
	}
}

// result returns the result of entry idx of a done batch. The last delivery
// to read its result gives the batch's entries back for reuse: nothing else
// reads them once the batch is finished.
func (b *Batcher) result(bt *pending, idx int) error {
	err := bt.entries[idx].err
	if bt.readers.Add(-1) == 0 {
		ents := bt.entries
		bt.entries = nil
		clear(ents)
		b.mu.Lock()
		if len(b.freeEnts) <= b.cfg.maxInFlight {
			b.freeEnts = append(b.freeEnts, ents[:0])
		}
		b.mu.Unlock()
	}
	return err
}
