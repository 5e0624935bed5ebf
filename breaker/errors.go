package breaker

import (
	"errors"
	"fmt"
	"time"

	"github.com/levee-dev/levee"
)

// ErrOpen is wrapped by the error a message gets when it waited for the
// breaker longer than the max hold (see WithMaxHold). The router Nacks it;
// the error's RetryAfter asks the transport for a delayed redelivery.
var ErrOpen = errors.New("levee/breaker: circuit open")

// ErrClosed is returned to a message that was waiting when the Breaker was
// closed (shutdown). The router Nacks it; nothing is dropped. It is a
// levee.Deferral: the handler was not run.
var ErrClosed = levee.DeferralSentinel("levee/breaker: breaker closed")

// ErrInvalidConfig is wrapped by every error New returns for an invalid
// setting.
// errors.Is matches it with levee.ErrInvalidConfig too.
var ErrInvalidConfig = levee.InvalidConfigSentinel("levee/breaker: invalid configuration")

// OpenError is returned when a message's wait exceeded the max hold, or
// when a message that waited in DrainMiddleware finds the breaker open
// again. It wraps ErrOpen and carries the delay after which a redelivery is worth
// trying (the shared delayed-redelivery contract of Levee: adapters honour
// RetryAfter natively where the transport can, elsewhere it is a Nack).
type OpenError struct {
	// State is the breaker state when the wait ended.
	State State
	// Held is how long the message waited.
	Held time.Duration
	// After is the suggested redelivery delay: the time left until the
	// breaker turns half-open when it is open, otherwise zero.
	After time.Duration
}

// Error describes the rejection.
func (e *OpenError) Error() string {
	return fmt.Sprintf("levee/breaker: circuit %s: message held %s (max hold), retry after %s", e.State, e.Held, e.After)
}

// Unwrap returns ErrOpen.
func (e *OpenError) Unwrap() error { return ErrOpen }

// RetryAfter returns the suggested redelivery delay.
func (e *OpenError) RetryAfter() time.Duration { return e.After }

// Deferred returns true: the handler was not run (levee.Deferral), so the
// delivery is not an attempt and not a failure.
func (e *OpenError) Deferred() bool { return true }

// configError names the setting at fault; it wraps ErrInvalidConfig.
type configError struct {
	key string // the YAML key, relative to the breaker section
	msg string
}

func (e *configError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrInvalidConfig, e.key, e.msg)
}

func (e *configError) Unwrap() error { return ErrInvalidConfig }

func invalid(key, format string, args ...any) error {
	return &configError{key: key, msg: fmt.Sprintf(format, args...)}
}
