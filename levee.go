package levee

import "time"

// Deferral is the error of a layer that declined to run the handler now:
// a breaker open or draining past its max hold, a rate limit rejection or
// max wait, a priority shed or max wait, a batch that was shut down, or a
// layer that is closing. The handler was not called, so the message did
// nothing wrong and nothing downstream failed.
//
// The deferral contract, kept by every Levee layer:
//   - a deferral is never a handler attempt and never counts toward the
//     dlq's max attempts;
//   - it is never dead-lettered (unless the dlq was given an explicit max
//     age, which dead-letters with class "expired");
//   - it is never a breaker failure;
//   - the message is redelivered after RetryAfter: natively where the
//     transport can delay a redelivery, otherwise after a wait in process
//     bounded by the max hold, then a Nack.
//
// Deferred reports whether the error is a deferral; an error type may
// implement the method and return false to opt out.
type Deferral interface {
	error
	// RetryAfter is the suggested delay before the message is tried
	// again; zero means at once (the transport's own redelivery).
	RetryAfter() time.Duration
	// Deferred reports that the handler was not run.
	Deferred() bool
}

// MaxRetryAfter caps every redelivery delay Levee honours: a RetryAfter
// from any layer, and a delay read from metadata by a transport (a longer
// value is cut to it, so a forged or runaway delay cannot park a message
// for longer).
const MaxRetryAfter = time.Hour

// AsDeferral returns the first error in err's chain (followed as
// errors.Is does, through Unwrap() error and Unwrap() []error) that is a
// Deferral whose Deferred method returns true. It allocates nothing: it
// runs on every failed handler call.
func AsDeferral(err error) (Deferral, bool) {
	for err != nil {
		if d, ok := err.(Deferral); ok && d.Deferred() {
			return d, true
		}
		switch x := err.(type) {
		case interface{ Unwrap() error }:
			err = x.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				if d, ok := AsDeferral(e); ok {
					return d, true
				}
			}
			return nil, false
		default:
			return nil, false
		}
	}
	return nil, false
}

// IsDeferral reports whether err's chain holds a Deferral (see AsDeferral).
func IsDeferral(err error) bool {
	_, ok := AsDeferral(err)
	return ok
}

// DeferralSentinel returns a distinct sentinel error, compared with
// errors.Is, that is also a Deferral with no delay. Layers use it for the
// rejection of a message that arrives while they shut down: the message
// is Nacked and redelivered, never counted as an attempt.
func DeferralSentinel(text string) error { return &sentinel{text: text} }

type sentinel struct{ text string }

func (e *sentinel) Error() string             { return e.text }
func (e *sentinel) RetryAfter() time.Duration { return 0 }
func (e *sentinel) Deferred() bool            { return true }

// Defer returns a Deferral that asks for the message to be tried again
// after d (negative d counts as zero) and wraps cause (which may be nil). A
// handler returns it to say "not now" for a reason that is not the
// message's fault, such as a downstream's 429 with a Retry-After: the
// delivery is then not an attempt. Use it only for that: a poison message
// whose handler always defers is never dead-lettered.
func Defer(d time.Duration, cause error) error {
	return &DeferError{After: max(d, 0), Err: cause}
}

// DeferError is the Deferral returned by Defer.
type DeferError struct {
	After time.Duration // the suggested delay
	Err   error         // the cause, or nil
}

// Error describes the deferral.
func (e *DeferError) Error() string {
	s := "levee: deferred, retry after " + e.After.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// RetryAfter returns After.
func (e *DeferError) RetryAfter() time.Duration { return e.After }

// Deferred returns true.
func (e *DeferError) Deferred() bool { return true }

// Unwrap returns the cause.
func (e *DeferError) Unwrap() error { return e.Err }
