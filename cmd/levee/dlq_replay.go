package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq/dlqops"
	lconfig "github.com/levee-dev/levee/internal/config"
)

// This file holds `levee dlq replay`.

// replayStatusUsage is --status's help in replay, which does not take it.
const replayStatusUsage = "not taken by replay: it selects new letters, and replayed ones with --force"

// replay runs `levee dlq replay`. It is one function past 80 lines because
// it reads as the command's steps in order (flags, store, publisher,
// validator, replayer, run with progress, summary); each step is a few
// lines and shares the command's locals.
func (c *dlqCmd) replay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	c.commonFlags(fs)
	var sel selection
	sel.flags(fs)
	// replay refuses --status (below); its help says so instead of
	// listing the statuses the other commands take.
	fs.Lookup("status").Usage = replayStatusUsage
	rate := fs.String("rate", fmt.Sprintf("%g/s", dlqops.DefaultReplayRate), "velocity limit (200/s, 5/min; 0 for none)")
	maxReplays := fs.Int("max-replays", dlqops.DefaultMaxReplays, "a letter replayed this often stays dead")
	dry := fs.Bool("dry-run", false, "report what would be replayed; change nothing")
	force := fs.Bool("force", false, "replay letters already replayed, again")
	all := fs.Bool("all", false, "replay every new letter matching no selector")
	canary := fs.Bool("canary", false, "replay in waves that wait for outcomes and halt on failures (docs/CONSOLE.md)")
	waves := fs.String("waves", joinInts(dlqops.DefaultCanaryWaves()), "canary wave sizes, comma-separated; the last repeats")
	ratio := fs.Float64("max-failure-ratio", 0, "canary: halt when a wave's failures pass this ratio")
	wait := durationFlag(fs, "wait", dlqops.DefaultCanaryWait, "canary: how long a wave waits for re-dead-letters (a `duration`)")
	newIdentity := fs.Bool("new-identity", false, "give each replay a fresh dedup identity, so a consumer behind dedup runs it even if the original succeeded")
	dedupURL := fs.String("dedup-store", "", "the consumers' dedup store (redis://... or postgres://...): hold back letters whose message already succeeded")
	dedupName := fs.String("dedup-name", "", "with --dedup-store: the Redis key prefix or the PostgreSQL table (default: the store's)")
	var allow multiFlag
	fs.Var(&allow, "allow-topic", "a topic replays may publish to (repeatable; added to store.replay_topics)")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("replay takes no arguments, got %q", pos)
	}
	if sel.empty() && !*all {
		return usagef("replay needs a selector (--group, --topic, --handler, --id, --since/--until) or --all")
	}
	if sel.status != "" {
		return usagef("replay selects new letters (and replayed ones with --force); --status does not apply")
	}
	if set := canaryOnly(fs); len(set) > 0 && !*canary {
		// without --canary the whole selection would go at once: the
		// opposite of what the flags ask for
		return usagef("%s apply to a canary replay only: add --canary (without it the whole selection is replayed, no waves)",
			strings.Join(set, ", "))
	}
	r, err := lconfig.ParseRate(*rate)
	if err != nil {
		return usagef("--rate: %v", err)
	}
	if *maxReplays < 1 {
		return usagef("--max-replays must be at least 1")
	}
	f, err := c.filter(&sel)
	if err != nil {
		return err
	}
	cfg, sc, s, closeFn, err := c.store(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	topics := append(append([]string(nil), sc.ReplayTopics...), allow...)
	var pub message.Publisher
	if !*dry {
		p, closePub, err := c.openPublisher(ctx, cfg)
		if err != nil {
			return err
		}
		defer closePub()
		pub = p
	}
	last := time.Time{}
	progress := func(p dlqops.ReplayProgress) {
		if *dry {
			return
		}
		if now := time.Now(); now.Sub(last) >= time.Second {
			last = now
			fmt.Fprintf(c.stderr, "replay: %s\n", progressLine(p))
		}
	}
	validator, err := replayValidator(cfg)
	if err != nil {
		return err
	}
	opts := []dlqops.Option{dlqops.WithReplayRate(r), dlqops.WithMaxReplays(*maxReplays),
		dlqops.WithReplayProgress(progress), dlqops.WithReplayValidator(validator), dlqops.WithReplayTopics(topics...)}
	if *dedupURL != "" {
		done, closeDone, err := openDoneCheck(ctx, *dedupURL, *dedupName, sc.StoreTimeout())
		if err != nil {
			return err
		}
		defer closeDone()
		opts = append(opts, dlqops.WithReplayDoneCheck(done))
	}
	rp, err := dlqops.NewReplayer(s, pub, opts...)
	if err != nil {
		return usageError{msg: err.Error(), err: err}
	}
	if *canary {
		return c.canary(ctx, rp, dlqops.ReplaySelection{Filter: f, DryRun: *dry, Force: *force, NewIdentity: *newIdentity}, *waves, *ratio, *wait)
	}
	rep, runErr := rp.Replay(ctx, dlqops.ReplaySelection{Filter: f, DryRun: *dry, Force: *force, NewIdentity: *newIdentity})
	runErr = interrupted(ctx, "replay", runErr, replayAgain)
	if !*dry {
		fmt.Fprintf(c.stderr, "replay: %s, %s\n", progressLine(dlqops.ReplayProgress{Processed: rep.Processed,
			Replayed: rep.Replayed, Held: rep.Held, Failed: rep.Failed, Elapsed: rep.Elapsed}),
			map[bool]string{true: "done", false: "stopped"}[runErr == nil])
	}
	if c.jsonOut {
		if err := writeJSON(c.stdout, jsonReport(rep, runErr)); err != nil {
			return err
		}
	} else if !*dry || runErr == nil {
		// a dry run that stopped has no report: "would replay 0 (of 0)"
		// would say the selection is empty
		writeReport(c.stdout, rep)
	}
	if rep.Processed == 0 && runErr == nil {
		fmt.Fprintln(c.stderr, "levee dlq: "+noMatch)
	}
	if runErr != nil {
		return runErr
	}
	if rep.Failed > 0 {
		return fmt.Errorf("%d replays failed", rep.Failed)
	}
	return nil
}

func progressLine(p dlqops.ReplayProgress) string {
	rate := "-"
	if p.Elapsed >= 100*time.Millisecond {
		rate = fmt.Sprintf("%.1f", float64(p.Replayed)/p.Elapsed.Seconds())
	}
	return fmt.Sprintf("%d processed: %d replayed, %d held, %d failed (%s msg/s, %s)",
		p.Processed, p.Replayed, p.Held, p.Failed, rate, p.Elapsed.Round(time.Millisecond))
}

// replayAgain is what to do after an interrupted replay.
const replayAgain = "run the same command again: the letters it replayed are skipped, the rest are still new"

// interrupted words the error of a run that stopped (a replay, a canary,
// a prune): stopped by Ctrl-C or SIGTERM (ctx ended), it says so and what
// to do next, rather than Go's "context canceled"; else "<what> stopped:
// " and err. Nil stays nil.
func interrupted(ctx context.Context, what string, err error, next string) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%s interrupted (Ctrl-C or SIGTERM): %s", what, next)
	}
	return fmt.Errorf("%s stopped: %w", what, err)
}

// canaryOnly returns the canary flags given on fs (--waves,
// --max-failure-ratio, --wait).
func canaryOnly(fs *flag.FlagSet) []string {
	var set []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "waves", "max-failure-ratio", "wait":
			set = append(set, "--"+f.Name)
		}
	})
	return set
}
