package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	lconfig "github.com/levee-dev/levee/internal/config"
)

func (c *dlqCmd) groups(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("groups", flag.ContinueOnError)
	c.commonFlags(fs)
	var sel selection
	sel.flags(fs)
	by := fs.String("by", "fingerprint", "group by fingerprint, topic or handler")
	window := durationFlag(fs, "window", time.Hour, "count arrivals within this `duration`")
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

// durationValue is a duration flag parsed as the config file's durations
// are: a mistake says what a duration looks like (`"1d" is not a duration
// (use e.g. 250ms, 5s, 1m)`) where the flag package said "parse error",
// and a negative one is refused.
type durationValue time.Duration

func (d *durationValue) String() string { return time.Duration(*d).String() }

func (d *durationValue) Set(s string) error {
	v, err := lconfig.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

// durationFlag defines a durationValue flag with default def on fs.
func durationFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	d := def
	fs.Var((*durationValue)(&d), name, usage)
	return &d
}
