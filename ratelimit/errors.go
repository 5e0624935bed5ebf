package ratelimit

import (
	"errors"
	"strconv"
	"time"
)

// ErrLimited is the sentinel of every rejection by a limiter: reject mode
// without a free token, a wait that would exceed max_wait, or a wait that
// could not end before the message context's deadline. The error actually
// returned is a *LimitedError, which wraps ErrLimited and carries the
// suggested redelivery delay; test it with errors.Is(err, ErrLimited).
var ErrLimited = errors.New("levee/ratelimit: rate limited")

// ErrClosed is returned by waits that were pending when the Limiter was
// closed, and by every wait after Close.
var ErrClosed = errors.New("levee/ratelimit: limiter closed")

// ErrInvalid is wrapped by every configuration error from New, the options
// and Config.Validate.
var ErrInvalid = errors.New("levee/ratelimit: invalid configuration")

// ZeroRateRetryAfter is the redelivery delay suggested by a rejection when
// the rate is 0, where no token will ever come unless the rate is raised.
const ZeroRateRetryAfter = time.Second

// LimitedError is the error returned for a rejected message. It wraps
// ErrLimited and implements the shared delayed-redelivery contract:
// RetryAfter is the time until a token is expected, so a transport that can
// delay redelivery brings the message back when it can be admitted.
type LimitedError struct {
	retryAfter time.Duration
	reason     string
}

// Error describes the rejection and the suggested delay.
func (e *LimitedError) Error() string {
	return ErrLimited.Error() + " (" + e.reason + "; retry after " + e.retryAfter.String() + ")"
}

// RetryAfter is the suggested redelivery delay: the expected wait for a
// token at the time of the rejection (ZeroRateRetryAfter when the rate is
// 0). It is never negative.
func (e *LimitedError) RetryAfter() time.Duration { return e.retryAfter }

// ErrorClass reports "transient": a rate limit is never the message's fault.
func (e *LimitedError) ErrorClass() string { return "transient" }

// Unwrap returns ErrLimited.
func (e *LimitedError) Unwrap() error { return ErrLimited }

func limited(wait float64, reason string) *LimitedError {
	var d time.Duration
	switch {
	case wait != wait || wait > float64(maxDuration): // NaN or beyond
		d = ZeroRateRetryAfter
	case wait > 0:
		d = time.Duration(wait + 0.999999) // round up to the next ns
	}
	return &LimitedError{retryAfter: d, reason: reason}
}

const maxDuration = time.Duration(1<<63 - 1)

func invalidf(what string, v float64) error {
	return &invalidError{what: what, val: strconv.FormatFloat(v, 'g', -1, 64)}
}

type invalidError struct {
	what, val string
}

func (e *invalidError) Error() string {
	return ErrInvalid.Error() + ": " + e.what + " (got " + e.val + ")"
}

func (e *invalidError) Unwrap() error { return ErrInvalid }
