package dlqops

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// keeper renews, every third of the lease, the leases of the letters a
// run claimed and has not handled yet (the one it is publishing among
// them), when the store is a Renewer: a publish that outlasts the lease
// keeps its letter, so another run does not claim and publish it too.
type keeper struct {
	next  atomic.Int64 // the letters before it are handled
	stopc chan struct{}
	done  chan struct{}
}

// keep starts the keeper of claimed, or returns nil when the store cannot
// renew (a nil keeper's methods do nothing).
func (u *run) keep(ctx context.Context, claimed []Record) *keeper {
	rn, ok := u.r.store.(Renewer)
	if !ok || len(claimed) == 0 {
		return nil
	}
	ids := make([]string, len(claimed))
	for i := range claimed {
		ids[i] = claimed[i].ID
	}
	k := &keeper{stopc: make(chan struct{}), done: make(chan struct{})}
	every := max(u.r.cfg.lease/3, time.Millisecond)
	go func() {
		defer close(k.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-k.stopc:
				return
			case <-t.C:
			}
			rest := ids[min(int(k.next.Load()), len(ids)):]
			if len(rest) == 0 {
				continue
			}
			// not ctx: an interrupted run may still be publishing a
			// letter (a publisher that ignores the message's context),
			// and the letter stays its own until the publish returns
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), every)
			_, err := rn.Renew(rctx, u.r.cfg.owner, u.r.cfg.now().Add(u.r.cfg.lease), rest...)
			cancel()
			if err != nil {
				u.r.cfg.logger.Error("levee dlq replay: renewing the claims failed; they end with their lease", err,
					watermill.LogFields{"letters": len(rest)})
			}
		}
	}()
	return k
}

// at records that the letters before i are handled.
func (k *keeper) at(i int) {
	if k != nil {
		k.next.Store(int64(i))
	}
}

// stop ends the renewals and waits for the last one.
func (k *keeper) stop() {
	if k != nil {
		close(k.stopc)
		<-k.done
	}
}
