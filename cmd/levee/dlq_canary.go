package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// canary runs `levee dlq replay --canary`: waves that wait for the
// outcomes of the last and halt on failures (dlqops.Replayer.Canary).
func (c *dlqCmd) canary(ctx context.Context, rp *dlqops.Replayer, sel dlqops.ReplaySelection, waves string, ratio float64, wait time.Duration) error {
	if sel.DryRun {
		return usagef("--canary has no --dry-run")
	}
	plan := dlqops.CanaryPlan{MaxFailureRatio: ratio, Wait: wait}
	if waves != "" {
		for _, p := range strings.Split(waves, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil {
				return usagef("--waves %q: %v", waves, err)
			}
			plan.Waves = append(plan.Waves, n)
		}
	}
	if _, err := plan.Validate(); err != nil {
		return usageError{msg: err.Error(), err: err}
	}
	last := 0
	p, err := rp.Canary(ctx, sel, plan, func(p dlqops.CanaryProgress) {
		if n := len(p.Waves); n != last && n > 0 {
			last = n
			fmt.Fprintf(c.stderr, "canary: wave %d of %d letters\n", n, p.Waves[n-1].Size)
		}
	})
	if c.jsonOut {
		if err := writeJSON(c.stdout, p); err != nil {
			return err
		}
	} else {
		for _, w := range p.Waves {
			fmt.Fprintf(c.stdout, "wave %d: size %d, replayed %d, held %d, dead-lettered again %d, processed %d%s\n",
				w.Wave, w.Size, w.Replayed, w.Held, w.FailedAgain, w.Processed, map[bool]string{true: " (halted)"}[w.Halted])
		}
		fmt.Fprintf(c.stdout, "replayed %d, processed %d, dead-lettered again %d, held %d\n", p.Replayed, p.Processed, p.FailedAgain, p.Held)
	}
	if err != nil {
		return interrupted(ctx, "canary replay", err,
			"the replays it published stay replayed, the letters no wave took stay new; run it again for the rest")
	}
	if p.Halted {
		return fmt.Errorf("canary replay halted: %d of the last wave's replays were dead-lettered again; the rest is untouched", p.Waves[len(p.Waves)-1].FailedAgain)
	}
	return nil
}

// joinInts writes ns as the comma-separated list --waves takes.
func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
