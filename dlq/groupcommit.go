package dlq

import (
	"context"
	"sync"
)

// groupCommit coalesces concurrent Monitor.Handle calls into one Store.Add:
// the first caller flushes at once what is pending (no added wait); while
// that insert runs, later callers queue; when it ends, the first queued
// caller flushes the whole queue, and so on. With one message in flight it
// is a plain single-row insert; with N in flight, batches approach N rows.
// Every caller returns only after the Add that carried its letter.
type groupCommit struct {
	store   Store
	maxRows int
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

// submit stores rec and returns the error of the Add that carried it.
func (g *groupCommit) submit(ctx context.Context, rec Record) error {
	it := &gcItem{rec: rec, done: make(chan gcResult, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, it)
	if g.flushing {
		g.mu.Unlock()
		// no select on ctx: this goroutine may be handed the lead, and the
		// Add it waits for is bounded by the store's own timeouts
		res := <-it.done
		if !res.lead {
			return res.err
		}
		g.mu.Lock()
	}
	g.flushing = true
	return g.flush(context.WithoutCancel(ctx), it)
}

// flush runs one batch with g.mu held on entry; own is the caller's item,
// always in the batch.
func (g *groupCommit) flush(ctx context.Context, own *gcItem) error {
	n := min(len(g.pending), g.maxRows)
	batch := g.pending[:n:n]
	// own is in the first maxRows: it was queued before anyone behind it
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
	if len(g.pending) == 0 {
		g.flushing = false
	} else {
		g.pending[0].done <- gcResult{lead: true}
	}
	g.mu.Unlock()
	return err
}
