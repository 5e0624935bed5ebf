package dedup

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// waiters are the goroutines that write the done mark of a message whose
// handler returned messages to publish once the router settles it (see
// finishWhenSettled). Close stops them.
type waiters struct {
	mu     sync.Mutex
	closed bool // guarded by mu
	stop   chan struct{}
	wg     sync.WaitGroup
}

// errNotSettled is logged for a message that the router neither acked
// nor Nacked within the lease after its handler returned messages.
var errNotSettled = errors.New("levee/dedup: the message was neither acked nor nacked within the lease after its handler returned messages to publish")

// finishWhenSettled finishes the claim of a message whose handler
// succeeded and returned messages: Watermill's router publishes them
// after the chain returned, and Nacks the message if that publish fails,
// so its redelivery must run again rather than be acked as a duplicate of
// a done identity (the output would be lost). The done mark is written
// once the message is acked, the claim released once it is Nacked. A
// message settled by neither within the lease gets no mark (its claim
// has ended; a duplicate runs again, at-least-once), and Close releases
// the claim of a message not acked by then.
func (d *Dedup) finishWhenSettled(ctx context.Context, msg *message.Message, key string, token uint64, attrs *atomic.Pointer[handlerAttrs]) {
	d.waiters.mu.Lock()
	if d.waiters.closed {
		d.waiters.mu.Unlock()
		d.settled(ctx, msg, key, token, attrs, false)
		return
	}
	d.waiters.wg.Add(1)
	d.waiters.mu.Unlock()
	go func() {
		defer d.waiters.wg.Done()
		timer := time.NewTimer(d.cfg.lease)
		defer timer.Stop()
		select {
		case <-msg.Acked():
			d.settled(ctx, msg, key, token, attrs, true)
		case <-msg.Nacked():
			d.settled(ctx, msg, key, token, attrs, false)
		case <-d.waiters.stop:
			select {
			case <-msg.Acked():
				d.settled(ctx, msg, key, token, attrs, true)
			default:
				d.settled(ctx, msg, key, token, attrs, false)
			}
		case <-timer.C:
			d.log("no done mark; a duplicate runs again", key, errNotSettled)
		}
	}()
}

// settled marks key done (acked) or releases its claim, counting and
// logging a store failure.
func (d *Dedup) settled(ctx context.Context, msg *message.Message, key string, token uint64, attrs *atomic.Pointer[handlerAttrs], acked bool) {
	err := d.finish(ctx, key, token, acked)
	if err == nil {
		return
	}
	d.count(ctx, attrs, msg, cStoreErrors)
	if acked {
		d.log("done mark failed; a duplicate after the lease will run again", key, err)
		return
	}
	d.unsure.add(key, token)
	d.log("release failed; the next claim from this process releases it, else it ends with its lease", key, err)
}

// Close stops waiting for the routers to settle the messages whose
// handlers returned messages to publish: the claim of one acked by then
// is marked done, any other released. It waits for those store calls
// (each bounded by the store timeout). Close the Dedup after the router
// that runs it (config.Applied.Close does). A message handled after Close
// that returns messages has its claim released rather than marked done.
// Idempotent; safe for concurrent use.
func (d *Dedup) Close() error {
	d.waiters.mu.Lock()
	if !d.waiters.closed {
		d.waiters.closed = true
		close(d.waiters.stop)
	}
	d.waiters.mu.Unlock()
	d.waiters.wg.Wait()
	return nil
}
