package batch

import "context"

// Shutdown stops the Batcher: new messages get ErrClosed, the open batch is
// flushed (reason "close") and queued batches run as slots free up.
// Shutdown returns when every batch func has returned. If ctx ends first,
// batches that have not started fail with ErrClosed (their messages are
// Nacked and redelivered), the contexts of running batches are cancelled,
// Shutdown still waits for those funcs to return, and it returns ctx.Err().
// It is safe to call more than once and concurrently.
func (b *Batcher) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		if b.cur != nil {
			b.sealLocked(b.cur, reasonClose, false)
		}
		b.checkIdleLocked()
	}
	idle := b.idle
	b.mu.Unlock()

	var err error
	select {
	case <-idle:
	case <-ctx.Done():
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
