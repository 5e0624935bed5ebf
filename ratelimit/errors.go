package ratelimit

import (
	"errors"
	"strconv"
	"time"

	"github.com/levee-dev/levee"
)

// ErrLimited is the sentinel of every rejection by a limiter: reject mode
// without a free token, a wait that would exceed max_wait, or a wait that
// could not end before the message context's deadline. The error actually
// returned is a *LimitedError, which wraps ErrLimited and carries the
// suggested redelivery delay; test it with errors.Is(err, ErrLimited).
var ErrLimited = errors.New("levee/ratelimit: rate limited")

// ErrClosed is returned by waits that were pending when the Limiter was
// closed, and by every wait after Close. It is a levee.Deferral: the
// handler was not run.
var ErrClosed = levee.DeferralSentinel("levee/ratelimit: limiter closed")

// ErrInvalidConfig is wrapped by every configuration error from New, the options
// and Config.Validate.
// errors.Is matches it with levee.ErrInvalidConfig too.
var ErrInvalidConfig = levee.InvalidConfigSentinel("levee/ratelimit: invalid configuration")

// ZeroRateRetryAfter is the redelivery delay suggested by a rejection when
// the rate is 0, where no token will ever come unless the rate is raised.
const ZeroRateRetryAfter = time.Second

// LimitedError is the error returned for a rejected message. It wraps
// ErrLimited and implements the shared delayed-redelivery contract:
// RetryAfter is the time until a token is expected, so a transport that can
// delay redelivery brings the message back when it can be admitted.
type LimitedError struct {
	retryAfter time.Duration
	reason     reason
}

// reason says why a message was rejected; it is the metrics attribute.
type reason uint8

const (
	reasonNoToken  reason = iota // reject mode, no free token
	reasonMaxWait                // expected wait beyond max_wait/max_hold
	reasonExpired                // queued wait outlasted max_wait/max_hold
	reasonDeadline               // wait would outlast the context deadline
	numReasons
)

// label is the reason's metrics attribute value.
func (r reason) label() string {
	switch r {
	case reasonNoToken:
		return "no_token"
	case reasonDeadline:
		return "deadline"
	}
	return "max_wait"
}

// text describes the reason in error messages.
func (r reason) text() string {
	switch r {
	case reasonNoToken:
		return "no token available"
	case reasonMaxWait:
		return "wait would exceed max_wait"
	case reasonExpired:
		return "wait exceeded max_wait"
	}
	return "wait would outlast the context deadline"
}

// Error describes the rejection and the suggested delay.
func (e *LimitedError) Error() string {
	return ErrLimited.Error() + " (" + e.reason.text() + "; retry after " + e.retryAfter.String() + ")"
}

// RetryAfter is the suggested redelivery delay: the expected wait for a
// token at the time of the rejection (ZeroRateRetryAfter when the rate is
// 0). In reject mode, messages rejected one after the other are told the
// tokens to come one by one (see Limiter.Reserve). It is never negative.
func (e *LimitedError) RetryAfter() time.Duration { return e.retryAfter }

// ErrorClass reports "transient": a rate limit is never the message's fault.
func (e *LimitedError) ErrorClass() string { return string(levee.ClassTransient) }

// Deferred returns true: the handler was not run (levee.Deferral), so the
// delivery is not an attempt and not a failure.
func (e *LimitedError) Deferred() bool { return true }

// Unwrap returns ErrLimited.
func (e *LimitedError) Unwrap() error { return ErrLimited }

func limited(wait float64, why reason) *LimitedError {
	var d time.Duration
	switch {
	case wait != wait || wait > float64(maxDuration): // NaN or beyond
		d = ZeroRateRetryAfter
	case wait > 0:
		d = time.Duration(wait + 0.999999) // round up to the next ns
	}
	return &LimitedError{retryAfter: d, reason: why}
}

const maxDuration = time.Duration(1<<63 - 1)

// invalid returns an error wrapping ErrInvalidConfig about the setting at field
// (its config key path, such as "per_key.rate").
func invalid(field, what string, v any) *invalidError {
	var val string
	switch x := v.(type) {
	case float64:
		val = strconv.FormatFloat(x, 'g', -1, 64)
	case int:
		val = strconv.Itoa(x)
	case time.Duration:
		val = x.String()
	case string:
		val = strconv.Quote(x)
	}
	return &invalidError{field: field, what: what, val: val}
}

type invalidError struct {
	field, what, val string
}

func (e *invalidError) Error() string {
	s := ErrInvalidConfig.Error() + ": "
	if e.field != "" {
		s += e.field + " "
	}
	s += e.what
	if e.val != "" {
		s += " (got " + e.val + ")"
	}
	return s
}

func (e *invalidError) Unwrap() error { return ErrInvalidConfig }
