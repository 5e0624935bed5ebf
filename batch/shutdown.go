package batch

import "context"

// Shutdown stops the Batcher: new messages get ErrClosed, the open batch is
// flushed (reason "close") and queued batches run as slots free up.
// Shutdown returns when every batch func has returned. If ctx ends first
// (or had ended: then the open batch is not flushed either),
// batches that have not started fail with ErrClosed (their messages are
// Nacked and redelivered), the contexts of running batches are cancelled,
// Shutdown still waits for those funcs to return, and it returns ctx.Err().
// It is safe to call more than once and concurrently.
func (b *Batcher) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		switch {
		case b.cur == nil:
		case ctx.Err() != nil:
			// No time left: the open batch does not start, as a queued
			// one would not below. Flushed, it raced the cancellation: its
			// func sometimes ran before the batch's context was cancelled,
			// sometimes after.
			if b.cur.count > 0 {
				b.inst.left(b.cur.attrs, leftClosed, b.cur.count)
			}
			b.failLocked(b.cur, ErrClosed)
		default:
			b.sealLocked(b.cur, reasonClose, false)
		}
		b.checkIdleLocked()
	}
	idle := b.idle
	b.mu.Unlock()

	var err error
	expired := ctx.Err() != nil
	if !expired {
		select {
		case <-idle:
		case <-ctx.Done():
			expired = true
		}
	}
	if expired {
		err = ctx.Err()
		b.mu.Lock()
		for _, bt := range b.ready {
			if bt.count > 0 {
				b.inst.left(bt.attrs, leftClosed, bt.count)
			}
			b.failLocked(bt, ErrClosed)
		}
		b.ready = nil
		b.mu.Unlock()
		b.stopAll()
	}
	b.wg.Wait()
	b.stopAll()
	b.mu.Lock()
	b.checkIdleLocked()
	b.mu.Unlock()
	return err
}

// Close is Shutdown without a deadline: it flushes every pending message
// through the batch func and returns when every batch func has returned.
// Use Shutdown to bound the wait. Close is idempotent and returns nil.
func (b *Batcher) Close() error {
	return b.Shutdown(context.Background())
}
