package tracing

import "github.com/levee-dev/levee/internal/telemetry"

// Span events the concern packages add to the consumer span, some through
// the helpers of internal/telemetry (AddRetryEvent and the like), which do
// nothing when the span is not recording. docs/TELEMETRY.md lists their
// attributes.
const (
	// EventRetry: an attempt failed and will be retried (dlq). Attributes
	// levee.retry.attempt, levee.retry.delay (s), levee.error.class.
	EventRetry = telemetry.EventRetry
	// EventBreakerWait: the message starts waiting for an open or
	// half-open breaker. Attribute levee.breaker.state.
	EventBreakerWait = telemetry.EventBreakerWait
	// EventBreakerWaitDone: the breaker wait ended. Attributes
	// levee.breaker.outcome, levee.breaker.waited_s.
	EventBreakerWaitDone = telemetry.EventBreakerWaitDone
	// EventBreakerDrainWait: the message waited for the drain ramp.
	// Attributes levee.breaker.drain.rate, levee.breaker.waited_s.
	EventBreakerDrainWait = telemetry.EventBreakerDrainWait
	// EventPriorityWait: the message waited for a scheduler slot.
	// Attributes levee.wait.duration (s), levee.priority.base,
	// levee.priority.effective.
	EventPriorityWait = telemetry.EventPriorityWait
	// EventRateLimitWait: the message waited for a token. Attribute
	// levee.wait.duration (s).
	EventRateLimitWait = telemetry.EventRateLimitWait
	// EventBatch: the message was handed to a batch. Attributes
	// levee.batch.trace_id, levee.batch.span_id (the batch span, which
	// links back to every member) and messaging.batch.message_count.
	EventBatch = telemetry.EventBatch
	// EventDeadLetter: the message was published to a dead-letter topic.
	// Attributes levee.error.class, levee.dlq.topic.
	EventDeadLetter = telemetry.EventDeadLetter
	// EventInvalidContext: the incoming traceparent was rejected and a new
	// trace started. Attribute levee.tracing.invalid_reason (malformed,
	// oversized).
	EventInvalidContext = telemetry.EventInvalidContext
)
