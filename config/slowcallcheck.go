package config

import (
	"fmt"
	"time"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/ratelimit"
)

// rateLimitSlowCall returns an error for a handler whose breaker (its own
// or a shared one) counts slow calls and whose rate limit (its ratelimit
// section, or its fleet section's) waits for tokens (mode wait) up to the
// slow-call threshold or longer: the
// breaker times everything inside its slot, the wait for a token
// included (docs/BREAKER.md), so a backlog waiting for tokens counts as
// slow calls and trips the breaker with a healthy downstream. Rate-limit
// backpressure is not failure. With max_wait below the threshold a
// longer wait is deferred instead, and a dlq waits it outside the
// breaker.
func (c *Config) rateLimitSlowCall(name string, hc *Handler) error {
	// the section's mode and bounds apply to a fleet limit too
	rc, local := Value[ratelimit.Config](hc, "ratelimit")
	hf, _ := Value[HandlerFleet](hc, "fleet")
	own := local && (rc.Rate != nil || rc.PerKey != nil || rc.Adaptive != nil)
	limited := hf.RateLimit != nil || own
	if !limited || rc.Mode == ratelimit.ModeReject.String() {
		return nil // no wait for a token
	}
	bk, ok := Value[breaker.Config](hc, "breaker")
	if !ok {
		return nil
	}
	path := "handlers." + name
	var th time.Duration
	at, whose := path+".breaker.slow_call.threshold", ""
	switch {
	case bk.Shared == "" && bk.SlowCall != nil:
		th = bk.SlowCall.Threshold
	case bk.Shared != "":
		th, _ = c.sharedSlowCall(bk.Shared)
		at, whose = path+".breaker", "the shared breaker "+bk.Shared+"'s slow_call.threshold "
	}
	if th <= 0 {
		return nil
	}
	bound := rc.MaxWait
	if rc.MaxHold > 0 && (bound == 0 || rc.MaxHold < bound) {
		bound = rc.MaxHold
	}
	if own && hf.RateLimit != nil && hf.RateLimit.LocalRate > 0 {
		// with local_rate the fleet limit is a limiter of its own,
		// outside the section's: two waits, each bounded (docs/RATELIMIT.md)
		bound *= 2
	}
	if bound > 0 && bound < th {
		return nil
	}
	longest := "no max_wait, so up to the transport's max hold"
	if bound > 0 {
		longest = bound.String()
	}
	return c.errorAt(at, fmt.Errorf("%s%s is not longer than the longest wait for a rate-limit token (%s): "+
		"the breaker times that wait as part of the call, so a backlog waiting for tokens would count as slow calls "+
		"and trip the breaker with a healthy downstream; set ratelimit.max_wait below %s less the handler's own time (a longer wait is then deferred, "+
		"and a dlq waits it outside the breaker), or use mode: reject", whose, th, longest, th))
}
