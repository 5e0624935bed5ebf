package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

func (c *dlqCmd) groups(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("groups", flag.ContinueOnError)
	c.commonFlags(fs)
	var sel selection
	sel.flags(fs)
	by := fs.String("by", "fingerprint", "group by fingerprint, topic or handler")
	window := fs.Duration("window", time.Hour, "count arrivals within this window")
	order := fs.String("order", "count", "order groups by count (largest first) or newest (last seen)")
	fs.Lookup("limit").Usage = "at most N groups, in --order (0: all); the store reads only those"
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("groups takes no arguments, got %q", pos)
	}
	gb, err := dlqops.ParseGroupBy(*by)
	if err != nil {
		return usageError{msg: err.Error(), err: err}
	}
	ord, err := dlqops.ParseGroupOrder(*order)
	if err != nil {
		return usageError{msg: err.Error(), err: err}
	}

	f, err := c.filter(&sel)
	if err != nil {
		return err
	}
	_, _, s, closeFn, err := c.store(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	now := c.now()
	// --limit bounds the groups here, not the letters grouped
	limit := f.Limit
	f.Limit = 0
	q := dlqops.GroupQuery{By: gb, Filter: f, WindowStart: now.Add(-*window), Order: ord}
	if limit > 0 {
		q.Limit = limit + 1 // one more: are there more?
	}
	groups, err := s.Groups(ctx, q)
	if err != nil {
		return err
	}
	if limit > 0 && len(groups) > limit {
		groups = groups[:limit]
		c.moreGroups(ctx, s, q, limit)
	}
	if c.jsonOut {
		return writeJSON(c.stdout, groups)
	}
	writeGroups(c.stdout, groups, *window, now)
	return nil
}

// moreGroups tells stderr that --limit cut the groups, and how many there
// are when the store counts them.
func (c *dlqCmd) moreGroups(ctx context.Context, s dlqops.Store, q dlqops.GroupQuery, shown int) {
	if gc, ok := s.(dlqops.GroupCounter); ok {
		if n, err := gc.CountGroups(ctx, q); err == nil {
			fmt.Fprintf(c.stderr, "showing %d of %d groups (--limit)\n", shown, n)
			return
		}
	}
	fmt.Fprintf(c.stderr, "showing the first %d groups; more follow (--limit)\n", shown)
}
