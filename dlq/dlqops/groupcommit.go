package dlqops

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// groupCommit coalesces concurrent Monitor.Handle calls into one Store.Add:
// the first caller flushes at once what is pending (no added wait); while
// that insert runs, later callers queue; when it ends, the first queued
// caller flushes the whole queue, and so on. With one message in flight it
// is a plain single-row insert; with N in flight, batches approach N rows.
//
// Every caller has a deadline (the monitor's store timeout from its call,
// and its message context): it returns the Add's result, or an error when
// the deadline passes or its context ends first, never later. The queue is
// first in, first out and every caller has the same timeout, so the leader
// of a batch has the earliest deadline of it, and the Add runs under that
// deadline (not under the leader's cancellation: the others' letters ride
// on it).
type groupCommit struct {
	store   Store
	maxRows int
	timeout time.Duration
	// observe is called once per batch, by the flushing goroutine, with how
	// many letters were new and the Add error.
	observe func(ctx context.Context, recs []Record, added int, err error)

	mu       sync.Mutex
	pending  []*gcItem // guarded by mu
	flushing bool      // guarded by mu: a leader is flushing
}

type gcItem struct {
	rec  Record
	done chan gcResult // buffered 1
}

type gcResult struct {
	err  error
	lead bool // the receiver flushes next
}

// errGaveUp is returned (wrapped) by submit when the caller's deadline or
// context ended while its letter was queued or in an Add that had not
// returned yet. The letter may still be stored by that Add: the message is
// Nacked, and its redelivery is a duplicate the store ignores.
type errGaveUp struct{ cause error }

func (e errGaveUp) Error() string {
	return fmt.Sprintf("levee/dlqops: gave up waiting for the store: %v", e.cause)
}

func (e errGaveUp) Unwrap() error { return e.cause }

// submit stores rec and returns the error of the Add that carried it, or
// an errGaveUp (queued: counted by the caller) when ctx or the deadline
// ends first.
func (g *groupCommit) submit(ctx context.Context, rec Record) (queued bool, err error) {
	deadline := time.Now().Add(g.timeout)
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	it := &gcItem{rec: rec, done: make(chan gcResult, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, it)
	if g.flushing {
		g.mu.Unlock()
		var res gcResult
		select {
		case res = <-it.done:
		case <-wctx.Done():
			return g.abandon(it), errGaveUp{cause: context.Cause(wctx)}
		}
		if !res.lead {
			return false, res.err
		}
		g.mu.Lock()
	}
	g.flushing = true
	fctx, fcancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer fcancel()
	return false, g.flush(fctx, it)
}

// abandon takes it out of the queue when it is still there (and passes on
// the lead if it had just been handed it); it reports whether it was
// queued. An item no longer queued is in an Add that another caller leads.
func (g *groupCommit) abandon(it *gcItem) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.Index(g.pending, it)
	if i < 0 {
		return false
	}
	g.pending = slices.Delete(g.pending, i, i+1)
	select {
	case res := <-it.done: // only a lead is sent to a queued item
		if res.lead {
			g.handOffLocked()
		}
	default:
	}
	return true
}

// handOffLocked hands the lead to the first queued caller, or ends the
// flushing when none is queued. g.mu is held.
func (g *groupCommit) handOffLocked() {
	if len(g.pending) == 0 {
		g.flushing = false
		return
	}
	g.pending[0].done <- gcResult{lead: true}
}

// flush runs one batch with g.mu held on entry; own is the caller's item,
// always in the batch.
func (g *groupCommit) flush(ctx context.Context, own *gcItem) error {
	n := batchLen(g.pending, g.maxRows)
	batch := g.pending[:n:n]
	// own is the first: it was queued before anyone behind it
	g.pending = append([]*gcItem(nil), g.pending[n:]...)
	g.mu.Unlock()

	recs := make([]Record, len(batch))
	for i, it := range batch {
		recs[i] = it.rec
	}
	added, err := g.store.Add(ctx, recs...)
	if g.observe != nil {
		g.observe(ctx, recs, added, err)
	}
	for _, it := range batch {
		if it != own {
			it.done <- gcResult{err: err}
		}
	}

	g.mu.Lock()
	g.handOffLocked()
	g.mu.Unlock()
	return err
}

// batchLen returns how many of the queued items the next batch takes: at
// most maxRows, and while their size stays within MonitorBatchBytes, but
// always the first.
func batchLen(pending []*gcItem, maxRows int) int {
	size := 0
	for i, it := range pending {
		if i == maxRows {
			return i
		}
		size += recordSize(&it.rec)
		if i > 0 && size > MonitorBatchBytes {
			return i
		}
	}
	return len(pending)
}

// recordSize is what a letter adds to an insert: its payload, metadata
// and error.
func recordSize(r *Record) int {
	n := len(r.Payload) + len(r.Error)
	for k, v := range r.Metadata {
		n += len(k) + len(v)
	}
	return n
}
