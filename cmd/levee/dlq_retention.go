package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// This file holds `levee dlq archive` and `levee dlq prune`.

func (c *dlqCmd) archive(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("archive", flag.ContinueOnError)
	c.commonFlags(fs)
	var sel selection
	sel.flags(fs)
	all := fs.Bool("all", false, "archive every letter matching no selector")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	sel.ids = append(sel.ids, pos...) // `archive ID...` works too
	if sel.empty() && !*all {
		return usagef("archive needs a selector (--group, --topic, --handler, --id, --since/--until, or IDs) or --all")
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
	n, err := s.SetStatus(ctx, f, dlqops.StatusArchived)
	if err != nil {
		return stoppedAfter(ctx, "archive", "archiving", n, err)
	}
	if c.jsonOut {
		return writeJSON(c.stdout, map[string]int{"archived": n})
	}
	fmt.Fprintf(c.stdout, "archived %d dead letters\n", n)
	if n == 0 {
		fmt.Fprintln(c.stderr, "levee dlq: "+noMatch)
	}
	return nil
}

// noMatch is the note for a replay or an archive that selected nothing,
// most often for a mistyped selector.
const noMatch = "the selection took no dead letter (a typo in --group, --topic, --handler or --id, or none left in a status to change? `levee dlq groups` and `levee dlq list` show what the store has)"

// minPruneAge is the youngest max age `levee dlq prune` applies without
// --force: a shorter one deletes letters that failed moments ago, before
// anyone looked at them (the issue: --max-age 1s emptied the store).
const minPruneAge = time.Hour

func (c *dlqCmd) prune(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("prune", flag.ContinueOnError)
	c.commonFlags(fs)
	var maxAge optDuration
	var maxCount optInt
	fs.Var(&maxAge, "max-age", "delete letters that failed more than this `duration` ago (default: store.retention.max_age)")
	fs.Var(&maxCount, "max-count", "keep at most this `number` of letters (default: store.retention.max_count)")
	dry := fs.Bool("dry-run", false, "report what would be deleted; delete nothing")
	force := fs.Bool("force", false, "accept a max age under "+shortDur(minPruneAge))
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("prune takes no arguments")
	}
	_, sc, s, closeFn, err := c.store(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	ret := sc.Retention.Policy()
	ageFrom := "store.retention.max_age"
	if maxAge.set {
		ret.MaxAge, ageFrom = maxAge.d, "--max-age"
	}
	if maxCount.set {
		ret.MaxCount = maxCount.n
	}
	if ret.MaxAge == 0 && ret.MaxCount == 0 {
		return usagef("prune: no retention configured (store.retention, --max-age, --max-count)")
	}
	// A dry run deletes nothing: it is what the refusal below asks for.
	if ret.MaxAge > 0 && ret.MaxAge < minPruneAge && !*force && !*dry {
		return usagef("prune: %s %s is under %s and would delete letters that just failed; check with --dry-run, then add --force",
			ageFrom, ret.MaxAge, shortDur(minPruneAge))
	}
	now := c.now()
	if *dry {
		p, err := dlqops.PreviewPrune(ctx, s, ret, now)
		if err != nil {
			return err
		}
		if c.jsonOut {
			return writeJSON(c.stdout, struct {
				DryRun      bool `json:"dry_run"`
				WouldDelete int  `json:"would_delete"`
				dlqops.PrunePreview
			}{true, p.Total(), p})
		}
		writePrunePreview(c.stdout, p, ret)
		return nil
	}
	n, err := s.Prune(ctx, ret, now)
	if err != nil {
		return stoppedAfter(ctx, "prune", "deleting", n, err)
	}
	if c.jsonOut {
		return writeJSON(c.stdout, map[string]int{"deleted": n})
	}
	fmt.Fprintf(c.stdout, "deleted %d dead letters\n", n)
	return nil
}

// optDuration is a duration flag that tells whether it was given, so that
// `prune -h` shows no made-up default (the default is the store's
// retention).
type optDuration struct {
	d   time.Duration
	set bool
}

func (o *optDuration) String() string {
	if o == nil || !o.set {
		return ""
	}
	return o.d.String()
}

func (o *optDuration) Set(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("negative duration %s", v)
	}
	o.d, o.set = d, true
	return nil
}

// optInt is optDuration's counterpart for a count.
type optInt struct {
	n   int
	set bool
}

func (o *optInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.Itoa(o.n)
}

func (o *optInt) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("negative count %s", v)
	}
	o.n, o.set = n, true
	return nil
}

// stoppedAfter words the error of a prune or an archive (what) that
// stopped after changing n letters (doing: "deleting", "archiving"): the
// stores work in steps, oldest first, and what a step changed stays
// changed, so the count is true and running the command again does the
// rest.
func stoppedAfter(ctx context.Context, what, doing string, n int, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s interrupted (Ctrl-C or SIGTERM) after %s %d dead letters: run the same command again to do the rest", what, doing, n)
	}
	if n > 0 {
		return fmt.Errorf("%s stopped after %s %d dead letters: %w", what, doing, n, err)
	}
	return err
}
