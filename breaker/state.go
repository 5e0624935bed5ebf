package breaker

import "fmt"

// State is the state of a Breaker as seen by messages.
type State int

// The states. A forced breaker reports the state it is forced to.
const (
	// StateClosed lets messages through (at the drain's pace just after a
	// recovery) and counts their outcomes.
	StateClosed State = iota
	// StateHalfOpen lets the configured number of probes through; other
	// messages wait.
	StateHalfOpen
	// StateOpen makes every message wait.
	StateOpen
)

// String returns "closed", "half-open" or "open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half-open"
	case StateOpen:
		return "open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Force is an operator's override of the breaker (see ForceOpen,
// ForceClosed, ClearForce).
type Force int32

// The force modes.
const (
	// ForceNone: the breaker follows its counts (the default).
	ForceNone Force = iota
	// ForceOpen: every message waits, as when open, until cleared.
	ForceOpen
	// ForceClosed: every message goes through uncounted, with no drain.
	ForceClosed
)

// String returns "none", "open" or "closed".
func (f Force) String() string {
	switch f {
	case ForceNone:
		return "none"
	case ForceOpen:
		return "open"
	case ForceClosed:
		return "closed"
	}
	return fmt.Sprintf("Force(%d)", int(f))
}
