package priority

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/levee-dev/levee"
)

// Sentinels. Every rejection the scheduler returns is a *RejectError that
// wraps exactly one of them; test with errors.Is.
var (
	// ErrQueueFull: the scheduler already had max_waiting messages waiting
	// and this one had the lowest effective priority, so it was shed.
	ErrQueueFull = errors.New("levee/priority: queue full")
	// ErrMaxWait: the message waited max_wait (or max_hold, whichever is
	// shorter) without getting a slot.
	ErrMaxWait = errors.New("levee/priority: max wait exceeded")
	// ErrClosed: the scheduler was closed before the message got a slot. A
	// *RejectError wrapping ErrClosed also matches context.Canceled, so
	// layers that treat cancellation as neither success nor failure (the
	// breaker, metrics) do the same for a shutdown.
	ErrClosed = errors.New("levee/priority: scheduler closed")
	// ErrInvalidConfig is wrapped by every error NewScheduler and the config
	// sections return for an invalid option value.
	// errors.Is matches it with levee.ErrInvalidConfig too.
	ErrInvalidConfig = levee.InvalidConfigSentinel("levee/priority: invalid configuration")
)

// RejectError is returned when a message leaves the wait queue without a
// slot: shed (ErrQueueFull), waited too long (ErrMaxWait) or shut down
// (ErrClosed). The handler was not called, so the router Nacks the message;
// RetryAfter asks transports with native delays to redeliver it later.
// Nothing is dropped.
type RejectError struct {
	// Err is the sentinel: ErrQueueFull, ErrMaxWait or ErrClosed.
	Err error
	// Priority is the message's base priority.
	Priority int
	// Waited is how long the message waited before it was rejected.
	Waited time.Duration
	// Retry is the redelivery delay returned by RetryAfter.
	Retry time.Duration
}

// Error describes the rejection.
func (e *RejectError) Error() string {
	return fmt.Sprintf("%v (priority %d, waited %s)", e.Err, e.Priority, e.Waited)
}

// Unwrap returns the sentinel.
func (e *RejectError) Unwrap() error { return e.Err }

// Is makes a shutdown rejection match context.Canceled as well as
// ErrClosed.
func (e *RejectError) Is(target error) bool {
	return target == context.Canceled && e.Err == ErrClosed
}

// RetryAfter is the delay after which the transport should redeliver the
// message (the shared Levee contract for delayed redelivery). It is the
// scheduler's WithRetryAfter value.
func (e *RejectError) RetryAfter() time.Duration { return e.Retry }

// ErrorClass returns "transient": a rejected message is worth retrying.
func (e *RejectError) ErrorClass() string { return string(levee.ClassTransient) }

// Deferred returns true: the handler was not run (levee.Deferral), so the
// delivery is not an attempt and not a failure.
func (e *RejectError) Deferred() bool { return true }

// invalidError names the option (config key) at fault.
type invalidError struct {
	key string
	msg string
}

func (e *invalidError) Error() string {
	return "levee/priority: invalid option " + e.key + ": " + e.msg
}

// Unwrap returns ErrInvalidConfig, so errors.Is matches it and
// levee.ErrInvalidConfig.
func (e *invalidError) Unwrap() error { return ErrInvalidConfig }

func invalid(key, format string, args ...any) error {
	return &invalidError{key: key, msg: fmt.Sprintf(format, args...)}
}
