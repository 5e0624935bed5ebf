package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	iconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/ratelimit"
)

// holdKeys are the settings that bound how long a message is held before
// its handler runs or it is Nacked: each must stay within the transport's
// ack deadline, or the broker redelivers a message that is still held.
var holdKeys = []string{"max_hold", "max_wait"}

// CheckDeadline returns an error for every max_hold and max_wait in the
// file (handler sections, schedulers, breakers, and any section added
// later) that is longer than deadline, the transport's ack deadline: a
// message held that long is redelivered while still held; and for every
// handler timeout longer than it: an attempt that long is redelivered
// while it runs, and a duplicate runs beside it. Each error
// names the file, line and key. A deadline of zero or less checks
// nothing. A service holds a message less long than the deadline: see
// CheckMaxHold, which Build, adapters/service and `levee config check`
// run.
func (c *Config) CheckDeadline(deadline time.Duration) error {
	return c.checkHolds(deadline, fmt.Sprintf("the transport's ack deadline (%s)", deadline))
}

// CheckMaxHold is CheckDeadline against maxHold, the longest a message
// may be held (config.Deps.MaxHold): a share of the transport's ack
// deadline, so that a held message is Nacked before the broker redelivers
// it (adapters/service gives HoldFraction of it). A batch's max_wait must
// be shorter than it (Config.Batcher). Build runs it with Deps.MaxHold,
// and adapters/service and `levee config check` with the max hold a
// service gets, so all three refuse the same holds.
func (c *Config) CheckMaxHold(maxHold time.Duration) error {
	return c.checkHolds(maxHold, fmt.Sprintf("the max hold (%s: config.Deps.MaxHold, the part of the transport's ack deadline a message may be held)", maxHold))
}

// checkHolds returns an error for every hold and handler timeout longer
// than bound, described as what; a bound of zero or less checks nothing.
func (c *Config) checkHolds(bound time.Duration, what string) error {
	if bound <= 0 {
		return nil
	}
	// A handler's timeout, by path: a handler's name may hold dots.
	timeouts := map[string]bool{}
	for _, name := range c.HandlerNames() {
		timeouts["handlers."+name+".timeout"] = true
	}
	var errs []error
	for _, s := range c.sources.Settings() {
		if s.Path == "transport" || strings.HasPrefix(s.Path, "transport.") || strings.HasPrefix(s.Path, "store.") {
			continue
		}
		last := s.Path[strings.LastIndexByte(s.Path, '.')+1:]
		attempt := timeouts[s.Path]
		if !containsString(holdKeys, last) && !attempt {
			continue
		}
		d, err := iconfig.ParseDuration(s.Value)
		batchWait := strings.HasSuffix(s.Path, ".batch.max_wait")
		if err != nil || d < bound || d == bound && !batchWait {
			continue
		}
		held := "a message still held"
		if attempt {
			held = "a message whose attempt still runs, and a duplicate would run beside it"
		}
		msg := fmt.Sprintf("%s is longer than %s: the broker would redeliver %s; set it at most %s", d, what, held, bound)
		if batchWait {
			msg = fmt.Sprintf("%s is not shorter than %s: every batch would be failed with batch.HoldError before it flushes; set it below %s", d, what, bound)
		}
		errs = append(errs, &iconfig.Error{File: c.file, Line: s.Line, Path: s.Path, Err: errors.New(msg)})
	}
	return iconfig.Join(errs...)
}

// Warnings returns what the file asks for that is valid but may surprise,
// one line each with its location, in the order of the file: a rate of 0
// (a documented pause: the handler admits nothing until the rate
// changes), a ratelimit max_wait in
// reject mode (no message waits, so it does nothing), an adaptive
// latency_tolerance with no automatic target to scale, a handler's breaker
// that trips on consecutive failures no fewer than its dlq's max attempts
// (a message alone in flight when an outage starts is dead-lettered as
// the breaker trips; the defaults, 5 and 5, do this), a batch handler's
// priority scheduler with fewer slots than the batch's max_size (a batch
// never fills), a dedup lease not above the handler's timeout (an attempt
// may outlive its claim and run beside a duplicate), a dedup section
// without a dlq section (a message without an identity is redelivered
// without end), a handler whose
// messages wait for rate-limit tokens holding slots of a scheduler other
// handlers share (they can hold every slot), and telemetry sections
// (tracing, metrics) that deps gives no provider for, so they record
// nothing. Build logs them through Deps.Logger; `levee config check`
// prints them (it has no providers, so it notes every telemetry section).
func (c *Config) Warnings(deps Deps) []string {
	var out []string
	for _, name := range c.HandlerNames() {
		h := c.handlers[name]
		for _, check := range []func(string, *Handler) string{c.aloneWarning, c.batchSlotsWarning, c.leaseWarning, c.dedupDLQWarning, c.sharedSlotWarning} {
			if w := check(name, h); w != "" {
				out = append(out, w)
			}
		}
		if _, ok := Value[HandlerFleet](h, "fleet"); ok && !c.hasFleet && deps.FleetStore == nil {
			out = append(out, c.at("handlers."+name+".fleet")+": a fleet section needs a fleet store and the file has no top-level `fleet: {store: redis://...}` "+
				"(adapters/service builds it from there; in code, pass config.Deps.FleetStore): building the stack fails without one")
		}
		for _, p := range h.parts {
			path := "handlers." + name + "." + p.sec.Key
			switch p.sec.Key {
			case "tracing":
				if deps.TracerProvider == nil {
					out = append(out, c.at(path)+": tracing is on but no TracerProvider is given (config.Deps.TracerProvider): no spans are recorded")
				}
			case "metrics":
				if deps.MeterProvider == nil {
					out = append(out, c.at(path)+": metrics is on but no MeterProvider is given (config.Deps.MeterProvider): nothing is recorded")
				}
			case "ratelimit":
				if rc, ok := p.value.(ratelimit.Config); ok {
					out = append(out, c.ratelimitWarnings(path, rc)...)
				}
			}
		}
	}
	out = append(out, c.unusedWarnings()...)
	if c.empty() {
		out = append(out, c.file+": the file configures nothing (no handlers, transport, console, store, fleet or schemas): "+
			"is it the right file? A service started from it runs no handler, and `levee dlq` has no store")
	}
	c.sortByLine(out)
	return out
}

// sortByLine sorts warnings by the line of the file they start with
// ("file:line: "), as the file reads; those without a line come first,
// and the text breaks ties. Sorted as strings, line 103 came before
// line 11.
func (c *Config) sortByLine(ws []string) {
	line := func(w string) int {
		n := 0
		for _, r := range strings.TrimPrefix(w, c.file+":") {
			if r < '0' || r > '9' {
				break
			}
			n = n*10 + int(r-'0')
		}
		return n
	}
	sort.Slice(ws, func(i, j int) bool {
		if li, lj := line(ws[i]), line(ws[j]); li != lj {
			return li < lj
		}
		return ws[i] < ws[j]
	})
}

// ratelimitWarnings returns the warnings of the ratelimit section rc at
// path: a rate of 0 (the handler's, the per-key default's or an
// override's) pauses what it limits, max_wait does nothing in reject
// mode (no message waits), and an adaptive latency_tolerance does nothing
// beside target_latency or ignore_latency (it scales the automatic
// target only).
func (c *Config) ratelimitWarnings(path string, rc ratelimit.Config) []string {
	var out []string
	if rc.Rate != nil && *rc.Rate == 0 {
		out = append(out, c.at(path+".rate")+": rate 0 pauses the handler: it admits no message until the rate is raised")
	}
	if pk := rc.PerKey; pk != nil {
		if pk.Rate == 0 {
			out = append(out, c.at(path+".per_key.rate")+": rate 0 pauses every key: no keyed message is admitted until the rate is raised")
		}
		for _, k := range slices.Sorted(maps.Keys(pk.Overrides)) {
			if pk.Overrides[k].Rate == 0 {
				out = append(out, c.at(path+".per_key.overrides."+k+".rate")+fmt.Sprintf(": rate 0 pauses key %q: none of its messages is admitted until the rate is raised", k))
			}
		}
	}
	if a := rc.Adaptive; a != nil && a.LatencyTolerance != 0 && (a.TargetLatency > 0 || a.IgnoreLatency) {
		out = append(out, c.at(path+".adaptive.latency_tolerance")+": latency_tolerance applies only to the automatic latency target, "+
			"and target_latency or ignore_latency is set: it has no effect; remove it")
	}
	if rc.Mode == "reject" && rc.MaxWait > 0 {
		out = append(out, c.at(path+".max_wait")+": max_wait has no effect with mode: reject: a message without a free token is refused at once, it never waits; "+
			"remove max_wait, or use mode: wait to wait up to it")
	}
	return out
}

// empty reports whether the file has none of the sections Levee reads: an
// empty file, one of comments only, or the wrong file.
func (c *Config) empty() bool {
	for _, named := range c.shared {
		if len(named) > 0 {
			return false
		}
	}
	return len(c.handlers) == 0 && c.transport.IsZero() && c.console.IsZero() &&
		!c.hasStore && !c.hasFleet && c.schemas == nil
}

// unusedWarnings returns a warning for each named shared resource
// (schedulers, breakers) that no handler refers to: the handler meant to
// use it (a `breaker: {shared: NAME}` forgotten or put under the wrong
// handler) runs without it.
func (c *Config) unusedWarnings() []string {
	used := map[string]bool{}
	for _, h := range c.handlers {
		for _, p := range h.parts {
			if p.sec.ref == nil {
				continue
			}
			if section, name, _ := p.sec.ref(p.value); name != "" {
				used[section+"."+name] = true
			}
		}
	}
	var out []string
	for _, section := range sortedKeys(c.shared) {
		for _, name := range sortedKeys(c.shared[section]) {
			if path := section + "." + name; !used[path] {
				out = append(out, fmt.Sprintf("%s:%d: %s: no handler refers to it, so it does nothing; a handler uses it with %s",
					c.file, c.shared[section][name].Line(), path, refHint(section, name)))
			}
		}
	}
	return out
}

// refHint is how a handler refers to the named resource of a shared section.
func refHint(section, name string) string {
	switch section {
	case "schedulers":
		return fmt.Sprintf("`priority: {scheduler: %s}`", yamlName(name))
	case "breakers":
		return fmt.Sprintf("`breaker: {shared: %s}`", yamlName(name))
	}
	return "a reference to " + yamlName(name)
}

// aloneWarning returns the warning for a handler whose own breaker trips
// on consecutive failures at or above its dlq's max attempts, or "". A
// shared breaker counts every handler's failures and is not checked, nor
// is a breaker that does not trip on consecutive failures.
func (c *Config) aloneWarning(name string, h *Handler) string {
	bc, okB := Value[breaker.Config](h, "breaker")
	dc, okD := Value[dlq.Config](h, "dlq")
	if !okB || !okD {
		return ""
	}
	threshold, attempts := bc.TripsAfter(), dc.Retry.Backoff().MaxAttempts
	if threshold == 0 || threshold < attempts {
		return ""
	}
	return fmt.Sprintf("%s: the breaker trips after %d consecutive failures and the dlq allows %d attempts: "+
		"a message alone in flight when an outage starts is dead-lettered as the breaker trips; "+
		"set breaker.consecutive_failures below dlq.retry.max_attempts (docs/BREAKER.md, \"A message alone in flight\")",
		c.at("handlers."+name+".breaker"), threshold, attempts)
}

// dedupDLQWarning returns the warning for a handler with a dedup section
// and no dlq section, or "": a message the dedup layer refuses (no
// identity, ErrNoKey; a key the store refuses, ErrKeyRefused) fails the
// same way on every delivery, and without a dlq nothing dead-letters it,
// so it is Nacked and redelivered without end (over RabbitMQ, 8,334 times
// in 2 s for one message).
func (c *Config) dedupDLQWarning(name string, h *Handler) string {
	if _, ok := Value[dedup.Config](h, "dedup"); !ok {
		return ""
	}
	if _, ok := Value[dlq.Config](h, "dlq"); ok {
		return ""
	}
	return fmt.Sprintf("%s: the handler has no dlq section: a message the dedup layer refuses (no identity: a missing or empty key, "+
		"a payload that is not JSON, no UUID; or a key the store refuses) fails every delivery and is redelivered without end; "+
		"add `dlq: {}` to dead-letter it with the reason (docs/DEDUP.md)", c.at("handlers."+name+".dedup"))
}

// leaseWarning returns the warning for a handler whose dedup lease is not
// above its timeout, or "": an attempt still within its timeout may
// outlive its claim, and a duplicate then runs beside it. A batch handler
// without a timeout is warned when the lease is not above the batch's
// max_wait: every message of a batch that does not fill holds its claim
// at least that long (the claim is taken before the message joins), so
// its claim lapses while it waits and a duplicate delivered meanwhile
// runs too (TestBatchDedupLeaseWithinMaxWait in middleware).
func (c *Config) leaseWarning(name string, h *Handler) string {
	dc, okD := Value[dedup.Config](h, "dedup")
	if !okD {
		return ""
	}
	lease := dc.Lease
	if lease == 0 {
		lease = dedup.DefaultLease
	}
	if to, okT := Value[*middleware.Timeout](h, "timeout"); okT && to != nil {
		if lease > to.Duration() {
			return ""
		}
		return fmt.Sprintf("%s: the dedup lease (%s) is not above the handler's timeout (%s): an attempt that runs longer than the lease "+
			"loses its claim, and a duplicate delivered meanwhile runs beside it; set dedup.lease above the timeout and the holds inside the dedup slot (docs/DEDUP.md)",
			c.at("handlers."+name+".dedup"), lease, to.Duration())
	}
	bc, okB := h.Batch()
	if !okB {
		return ""
	}
	wait := maxWait(bc)
	if lease > wait {
		return ""
	}
	return fmt.Sprintf("%s: the dedup lease (%s) is not above the batch's max_wait (%s): a message holds its claim while it waits in its batch, "+
		"so in a batch that does not fill the claim lapses before the func runs, and a duplicate delivered meanwhile runs too; "+
		"set dedup.lease above max_wait plus the batch func's time (docs/DEDUP.md)",
		c.at("handlers."+name+".dedup"), lease, wait)
}

// at returns "file:line: path" for a key path of the file.
func (c *Config) at(path string) string {
	line := c.lineOf(path)
	if line == 0 {
		return c.file + ": " + path
	}
	return fmt.Sprintf("%s:%d: %s", c.file, line, path)
}

// lineOf returns the line of the key path in the file, or 0 when unknown.
func (c *Config) lineOf(path string) int {
	if s, ok := c.sources.Lookup(path); ok {
		return s.Line
	}
	return c.keyLines[path]
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
