package dlq

import (
	"errors"
	"fmt"
	"time"

	"github.com/levee-dev/levee"
)

// Sentinels. Every error this package returns wraps one of them.
var (
	// ErrInvalidConfig is wrapped by the errors New and Config.Validate
	// return for invalid settings.
	// errors.Is matches it with levee.ErrInvalidConfig too.
	ErrInvalidConfig = levee.InvalidConfigSentinel("levee/dlq: invalid configuration")
	// ErrRetryLater is wrapped by *RetryLaterError: the next retry is due
	// later than the max hold allows, so the message is Nacked for
	// redelivery.
	ErrRetryLater = errors.New("levee/dlq: retry deferred to redelivery")
	// ErrPublish is wrapped by *PublishError: the dead letter could not be
	// published, so the original message is Nacked.
	ErrPublish = errors.New("levee/dlq: dead-letter publish failed")
	// ErrNoTopic is wrapped (in a *PublishError) when no dead-letter topic
	// can be determined (no WithTopic and no subscribed topic in the message
	// context); the message is Nacked.
	ErrNoTopic = errors.New("levee/dlq: no dead-letter topic")
	// ErrTopicLoop is wrapped (in a *PublishError) when the dead-letter
	// topic is the topic the message was consumed from (WithTopic or
	// WithTopicFunc gave it): the letter would come back to the same
	// handler and fail again, forever, never reaching a store. It is not
	// published; the message is Nacked.
	ErrTopicLoop = errors.New("levee/dlq: the dead-letter topic is the topic the message was consumed from")
	// ErrInterrupted is wrapped when the message context ended during a
	// backoff wait; the message is Nacked.
	ErrInterrupted = errors.New("levee/dlq: retry wait interrupted")
	// ErrDeferredTooLong is wrapped by the error of a dead letter whose
	// message was only deferred for WithMaxDeferred or longer.
	ErrDeferredTooLong = errors.New("levee/dlq: deferred too long")
)

// RetryLaterError asks the transport to redeliver the message after Delay.
// It is returned (and so Nacks the message) when the next backoff delay would
// make the message wait longer than the max hold. It wraps ErrRetryLater and
// the handler's last error. When an earlier redelivery of the message waited
// max hold without its retry being due, the delivery made no handler attempt
// and the error is a levee.Deferral (Deferred reports true): telemetry
// reports it as deferred, not as a failure.
type RetryLaterError struct {
	Delay    time.Duration // the backoff delay that was not slept
	Attempts int           // attempts made so far, this one included
	Err      error         // the handler's last error

	noAttempt bool // an early redelivery: no handler attempt in this delivery
}

// Deferred reports whether the delivery that returned the error made no
// handler attempt (an early redelivery waiting for its retry); such an error
// is a levee.Deferral.
func (e *RetryLaterError) Deferred() bool { return e.noAttempt }

// Error describes the deferral.
func (e *RetryLaterError) Error() string {
	return fmt.Sprintf("%v: attempt %d failed, next in %s: %v", ErrRetryLater, e.Attempts, e.Delay, e.Err)
}

// RetryAfter returns the delay after which the message should be redelivered.
func (e *RetryLaterError) RetryAfter() time.Duration { return e.Delay }

// Unwrap returns ErrRetryLater and the handler's error.
func (e *RetryLaterError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrRetryLater}
	}
	return []error{ErrRetryLater, e.Err}
}

// PublishError reports a failed dead-lettering: the publish failed, no
// dead-letter topic could be determined (Err wraps ErrNoTopic), or it is
// the consumed topic (Err wraps ErrTopicLoop). The original
// message is Nacked; RetryAfter asks for a redelivery after Delay, which
// grows with consecutive failures as Backoff.Cap(n), and an earlier
// redelivery waits until then.
type PublishError struct {
	Topic string        // the dead-letter topic ("" with ErrNoTopic)
	Err   error         // the publisher's error, ErrNoTopic or ErrTopicLoop
	Cause error         // the handler error that sent the message to the DLQ
	Delay time.Duration // the redelivery delay asked for
}

// RetryAfter returns Delay.
func (e *PublishError) RetryAfter() time.Duration { return e.Delay }

// Error describes the failure.
func (e *PublishError) Error() string {
	return fmt.Sprintf("%v: topic %q: %v (handler error: %v)", ErrPublish, e.Topic, e.Err, e.Cause)
}

// Unwrap returns ErrPublish and the publisher's error.
func (e *PublishError) Unwrap() []error { return []error{ErrPublish, e.Err} }
