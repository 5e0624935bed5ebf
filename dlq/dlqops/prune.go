package dlqops

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// Pruner applies a Retention to a Store periodically. Run it in a goroutine
// the caller owns (it starts none itself) and stop it by cancelling the
// context; `levee dlq prune` does the same once. A Pruner is safe for
// concurrent use, though one Run per store is enough.
type Pruner struct {
	store  Store
	ret    Retention
	every  time.Duration
	now    func() time.Time
	logger watermill.LoggerAdapter
}

// NewPruner returns a Pruner applying r every interval. It takes WithClock
// and WithLogger. It returns an error wrapping ErrInvalidConfig for a nil
// store, a retention that bounds nothing or is negative, an interval that
// is not positive or an option it does not take.
func NewPruner(store Store, r Retention, every time.Duration, opts ...Option) (*Pruner, error) {
	c := newConfig(forPruner, opts)
	switch {
	case c.misplaced != nil:
		return nil, c.misplaced
	case store == nil:
		return nil, fmt.Errorf("%w: pruner without a store", ErrInvalidConfig)
	case r.MaxAge < 0 || r.MaxCount < 0:
		return nil, fmt.Errorf("%w: negative retention", ErrInvalidConfig)
	case r.MaxAge == 0 && r.MaxCount == 0:
		return nil, fmt.Errorf("%w: retention bounds nothing (set max_age or max_count)", ErrInvalidConfig)
	case every <= 0:
		return nil, fmt.Errorf("%w: prune interval %s must be positive", ErrInvalidConfig, every)
	}
	return &Pruner{store: store, ret: r, every: every, now: c.now, logger: c.logger}, nil
}

// PruneOnce applies the retention now and returns how many letters it
// deleted.
func (p *Pruner) PruneOnce(ctx context.Context) (int, error) {
	n, err := p.store.Prune(ctx, p.ret, p.now())
	if err != nil {
		p.logger.Error("levee dlq: prune failed", err, nil)
		return n, err
	}
	if n > 0 {
		p.logger.Info("levee dlq: pruned dead letters", watermill.LogFields{"deleted": n})
	}
	return n, nil
}

// Run prunes at once and then every interval until ctx ends, and returns
// ctx's error. A failed prune is logged and retried at the next tick.
func (p *Pruner) Run(ctx context.Context) error {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		_, _ = p.PruneOnce(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// PrunePreview is what Store.Prune would delete for a retention at a
// time, counted with the store's own queries (Groups, and SumGroups of a
// GroupSummer), so a dry run and the deletion select the same letters.
type PrunePreview struct {
	// ByAge are the groups (by fingerprint) of the letters that failed
	// before now-MaxAge, largest first; nil without a MaxAge.
	ByAge []Group `json:"by_age"`
	// Aged is how many letters ByAge holds.
	Aged int `json:"aged"`
	// OverCount is how many of the letters left after the age cut would
	// go, oldest first, to keep at most MaxCount; 0 without a MaxCount.
	OverCount int `json:"over_count"`
}

// Total returns how many letters the prune would delete.
func (p PrunePreview) Total() int { return p.Aged + p.OverCount }

// PreviewPrune reports what store.Prune(ctx, r, now) would delete, and
// deletes nothing. A letter that arrives or is deleted between the
// preview and the prune changes the count. Errors wrap ErrInvalidQuery for
// a negative retention, or are the store's.
func PreviewPrune(ctx context.Context, store Store, r Retention, now time.Time) (PrunePreview, error) {
	var p PrunePreview
	if r.MaxAge < 0 || r.MaxCount < 0 {
		return p, fmt.Errorf("%w: negative retention", ErrInvalidQuery)
	}
	var cut time.Time // Prune deletes FailedAt < cut, Filter.Until selects the same
	if r.MaxAge > 0 {
		cut = now.Add(-r.MaxAge)
		groups, err := store.Groups(ctx, GroupQuery{By: GroupByFingerprint, Filter: Filter{Until: cut}})
		if err != nil {
			return p, err
		}
		p.ByAge = groups
		for _, g := range groups {
			p.Aged += g.Count
		}
	}
	if r.MaxCount > 0 {
		n, err := countLetters(ctx, store, Filter{Since: cut})
		if err != nil {
			return p, err
		}
		p.OverCount = max(0, n-r.MaxCount)
	}
	return p, nil
}

// countLetters counts the letters f selects: one sum of a GroupSummer
// store, or the sum of every group of another.
func countLetters(ctx context.Context, store Store, f Filter) (int, error) {
	q := GroupQuery{By: GroupByFingerprint, Filter: f}
	if summer, ok := store.(GroupSummer); ok {
		sum, err := summer.SumGroups(ctx, q)
		return sum.Count, err
	}
	groups, err := store.Groups(ctx, q)
	return SumGroups(groups, "", GroupByFingerprint).Count, err
}
