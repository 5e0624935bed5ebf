package config

import (
	"fmt"
	"math"
	"strings"

	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
)

// sharedSlotWarning returns the warning for a handler whose messages wait
// for rate-limit tokens while they hold a slot of a scheduler that other
// handlers share, or "". The rate limit sits inside priority in the
// canonical order, so that tokens go to the most urgent messages; its
// waiting messages keep their slots, so a handler whose messages arrive
// faster than its rate can hold every slot of the scheduler, and the
// other handlers' messages then wait for its tokens to free one. A
// rejecting limit holds no slot: the message is Nacked to come back.
func (c *Config) sharedSlotWarning(name string, h *Handler) string {
	pc, ok := Value[priority.Config](h, "priority")
	if !ok || pc.Scheduler == "" {
		return ""
	}
	path, what := "", ""
	if rc, ok := Value[ratelimit.Config](h, "ratelimit"); ok && rc.Mode != "reject" && limits(rc) {
		path, what = "handlers."+name+".ratelimit", "rate-limit tokens"
	} else if fc, ok := Value[HandlerFleet](h, "fleet"); ok && fc.RateLimit != nil {
		path, what = "handlers."+name+".fleet.ratelimit", "fleet rate-limit tokens"
	}
	if path == "" {
		return ""
	}
	var others []string
	for _, n := range c.HandlerNames() {
		if o, ok := Value[priority.Config](c.handlers[n], "priority"); ok && n != name && o.Scheduler == pc.Scheduler {
			others = append(others, n)
		}
	}
	if len(others) == 0 {
		return ""
	}
	return fmt.Sprintf("%s: the messages of %s wait for %s while they hold a slot of scheduler %s, which %s also use: "+
		"when they arrive faster than the rate they can hold every slot, and the other handlers' messages wait for the tokens of %s to free one; "+
		"give %s a scheduler of its own, or set ratelimit.mode: reject (a limited message is Nacked to come back and holds no slot) "+
		"(docs/PRIORITY.md, \"With a rate limit\")",
		c.at(path), name, what, pc.Scheduler, strings.Join(others, ", "), name, name)
}

// limits reports whether rc limits anything: a finite rate of its own (0
// is a pause, warned about on its own), a per-key limit or an adaptive
// one.
func limits(rc ratelimit.Config) bool {
	own := rc.Rate != nil && *rc.Rate > 0 && !math.IsInf(*rc.Rate, 1)
	return own || rc.PerKey != nil || rc.Adaptive != nil
}
