package tracing

import "github.com/levee-dev/levee/internal/telemetry"

// Span events the concern packages add to the consumer span, through the
// helpers of internal/telemetry (AddRetryEvent and the like), which do
// nothing when the span is not recording. docs/TELEMETRY.md lists their
// attributes.
const (
	// EventRetry: an attempt failed and will be retried (dlq). Attributes
	// levee.retry.attempt, levee.retry.delay (s), levee.error.class.
	EventRetry = telemetry.EventRetry
	// EventBreakerWait: the message waited for the breaker. Attributes
	// levee.wait.duration (s), levee.breaker.state.
	EventBreakerWait = telemetry.EventBreakerWait
	// EventPriorityWait: the message waited for a scheduler slot.
	// Attributes levee.wait.duration (s), levee.priority.base,
	// levee.priority.effective.
	EventPriorityWait = telemetry.EventPriorityWait
	// EventRateLimitWait: the message waited for a token. Attribute
	// levee.wait.duration (s).
	EventRateLimitWait = telemetry.EventRateLimitWait
	// EventBatch: the message was processed in a batch. Attributes
	// levee.batch.id, levee.batch.size, levee.batch.index.
	EventBatch = telemetry.EventBatch
	// EventDeadLetter: the message was published to a dead-letter topic.
	// Attributes levee.error.class, levee.dlq.topic.
	EventDeadLetter = telemetry.EventDeadLetter
	// EventInvalidContext: the incoming traceparent was rejected and a new
	// trace started. Attribute levee.tracing.invalid_reason (malformed,
	// oversized).
	EventInvalidContext = telemetry.EventInvalidContext
)
