package chaos

import (
	"fmt"
	"time"
)

// killedBad reports whether a bad message's extra handler calls and
// attempts are explained by consumer kills: each interrupted delivery and
// each redelivery after a killed ack may add one handler call (the call
// the kill cut off before its failure was counted, or a call on the
// redelivery of a message whose dead letter was published but not acked)
// and, except for poison, one attempt. A poison message's stored letter
// must carry exactly max attempts.
func (r *Report) killedBad(e *entry, g *genStat, wantCalls, wantAttempts int) bool {
	if !r.opts.ConsumerKill {
		return false
	}
	return extraWindows(e, g, int(g.killed+g.afterKilledAck)+g.recounted(), wantCalls, wantAttempts, r.opts.StoreListed)
}

// recountedBad reports whether a bad message's extra handler calls are
// explained by the broker delivering it again as new (recounted), with
// no consumer kill involved: the same windows as killedBad.
func (r *Report) recountedBad(e *entry, g *genStat, wantCalls, wantAttempts int) bool {
	return extraWindows(e, g, g.recounted(), wantCalls, wantAttempts, r.opts.StoreListed)
}

// recounted is how many deliveries of g the broker counted as first after
// the first one: copies of the message the broker delivered again as new
// (nats-server before 2.10.14 does so after a failed delivery to a pull
// request whose client went away: its delivery count goes back to 1).
func (g *genStat) recounted() int { return max(int(g.brokerFirsts)-1, 0) }

// extraWindows reports whether g's handler calls and attempts are the
// fate's plus at most extra windows, each adding one call (and, but for
// poison, one attempt), with a poison message's stored letter at exactly
// max attempts.
func extraWindows(e *entry, g *genStat, extra, wantCalls, wantAttempts int, storeListed bool) bool {
	if extra == 0 {
		return false
	}
	extraCalls, extraAttempts := extra, extra
	if e.fate.Kind == Validation {
		extraCalls = 0 // the validator fails again; the handler is not called
	}
	if e.fate.Kind == Poison && g.deadLetters <= 1 {
		extraAttempts = 0 // only a later letter (after a killed ack) may count its redelivery's call
	}
	in := func(v, lo, hi int) bool { return v >= lo && v <= hi }
	rowOK := !storeListed || in(int(g.rowAttempts), wantAttempts, wantAttempts+extra)
	if e.fate.Kind == Poison {
		rowOK = !storeListed || int(g.rowAttempts) == wantAttempts
	}
	return in(int(g.calls), wantCalls, wantCalls+extraCalls) && in(int(g.dlAttempts), wantAttempts, wantAttempts+extraAttempts) && rowOK
}

// describe is the full per-message detail of one generation, for the
// lines of a failing or explained message.
func (g *genStat) describe() string {
	return fmt.Sprintf("deliveries %d (%d after an ack, %d after a killed ack, %d overlapping another, %d interrupted by a kill, %d of them after a success), "+
		"calls %d (%d failed by injected faults), successes %d, acks %d, nacks %d (%d after a success), dead letters %d (attempts %d, class %q), "+
		"store rows %d (attempts %d), failed DLQ publishes %d, longest hold %s (%d past the ack deadline), broker delivery count up to %d (%d first deliveries)",
		g.deliveries, g.afterAck, g.afterKilledAck, g.overlapped, g.killed, g.killedSuccess,
		g.calls, g.faultFails, g.successes, g.acks, g.nacks, g.successNacks, g.deadLetters, g.dlAttempts, g.dlClass,
		g.rows, g.rowAttempts, g.dlPublishFails, g.longestHold.Round(time.Millisecond), g.pastDeadline, g.brokerMax, g.brokerFirsts)
}
