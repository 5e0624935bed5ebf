package fleet

import (
	"context"
	"time"
)

// BreakerState is a fleet breaker's state as the store reports it.
type BreakerState uint8

// Fleet breaker states.
const (
	StateClosed   BreakerState = iota // messages run; outcomes are counted
	StateOpen                         // messages wait
	StateHalfOpen                     // one replica holds the probe lease and runs one message
	StateDraining                     // closed, with the fleet's throughput on the drain ramp
)

// String returns "closed", "open", "half-open" or "draining".
func (s BreakerState) String() string {
	switch s {
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half-open"
	case StateDraining:
		return "draining"
	}
	return "closed"
}

// Force is an operator's override of a fleet breaker: the kill switch.
type Force uint8

// Forces.
const (
	ForceNone   Force = iota // the window decides
	ForceOpen                // open on every replica, whatever the window
	ForceClosed              // closed on every replica, whatever the window
)

// String returns "none", "open" or "closed".
func (f Force) String() string {
	switch f {
	case ForceOpen:
		return "open"
	case ForceClosed:
		return "closed"
	}
	return "none"
}

// ParseForce parses "none" (or ""), "open" or "closed"; ok is false
// otherwise.
func ParseForce(s string) (f Force, ok bool) {
	switch s {
	case "", "none":
		return ForceNone, true
	case "open":
		return ForceOpen, true
	case "closed":
		return ForceClosed, true
	}
	return ForceNone, false
}

// Report is one replica's outcome counts since its last report, with the
// breaker's settings (every replica sends the same), and the result of the
// probe it ran, if any.
type Report struct {
	Key, Member         string
	Successes, Failures uint64
	// Probe is the outcome of the probe this member ran under its probe
	// lease: +1 success, -1 failure, 0 none.
	Probe int
	// Idle says no message waits on this member: it does not take the
	// probe lease of a half-open fleet, which goes to a member with a
	// message to probe (one without messages would hold it for ProbeTTL,
	// again and again while it reports first, and the fleet would stay
	// half-open).
	Idle         bool
	Window       time.Duration // the shared window the counts are summed over
	MinRequests  uint64        // the fleet trips only with at least this many
	FailureRatio float64       // the fleet trips at this failure share
	OpenFor      time.Duration // how long the fleet stays open before a probe
	ProbeTTL     time.Duration // how long a probe lease lasts
	DrainWindow  time.Duration // 0: close at once after a good probe
	MemberTTL    time.Duration
}

// View is the fleet breaker's state as one replica sees it after a Report.
type View struct {
	State      BreakerState // with the force applied
	Generation uint64       // changes at every trip and every recovery
	Probe      bool         // this member holds the probe lease (half-open)
	Force      Force
	Members    int
	// DrainElapsed is the store's time since the drain started (draining).
	DrainElapsed time.Duration
	// Baseline is the fleet's throughput over the window that tripped it
	// from closed (a trip during a drain keeps it), in messages per
	// second: what 100% of the drain ramp means.
	Baseline float64
}

// BreakerStore keeps fleet breakers: a shared window of outcome counts per
// key, the state machine, the probe lease and the force. Implementations
// use the store's own clock and honour ctx's deadline; they must be safe
// for concurrent use.
type BreakerStore interface {
	Report(ctx context.Context, r Report) (View, error)
	SetForce(ctx context.Context, key string, f Force) error
}
