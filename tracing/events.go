package tracing

import "github.com/levee-dev/levee/internal/telemetry"

// Span events the concern packages add to the consumer span, the dlq's
// through the helpers of internal/telemetry (AddRetryEvent,
// AddDeferralEvent, AddDeadLetterEvent), which do nothing when the span is not recording.
// The priority package adds its own (priority.EventAcquired,
// priority.EventRejected); the ratelimit package adds none.
// docs/TELEMETRY.md lists their attributes.
const (
	// EventRetry: an attempt failed and will be retried in place (dlq).
	// Attributes levee.retry.attempt, levee.retry.delay (s),
	// levee.error.class, levee.error.message.
	EventRetry = telemetry.EventRetry
	// EventDeferral: a deferral (levee.Deferral) is waited in process by
	// the dlq, its RetryAfter ending within the dlq's max hold.
	// Attributes levee.deferral.delay (s), levee.error.message.
	EventDeferral = telemetry.EventDeferral
	// EventBreakerWait: the message starts waiting for an open or
	// half-open breaker. Attribute levee.breaker.state.
	EventBreakerWait = telemetry.EventBreakerWait
	// EventBreakerWaitDone: the breaker wait ended. Attributes
	// levee.breaker.outcome, levee.breaker.waited_s.
	EventBreakerWaitDone = telemetry.EventBreakerWaitDone
	// EventBreakerDrainWait: the message waited for the drain ramp.
	// Attributes levee.breaker.drain.rate, levee.breaker.waited_s.
	EventBreakerDrainWait = telemetry.EventBreakerDrainWait
	// EventBatch: the message was handed to a batch. Attributes
	// levee.batch.trace_id, levee.batch.span_id (the batch span, which
	// links back to every member) and messaging.batch.message_count.
	EventBatch = telemetry.EventBatch
	// EventDeadLetter: the message was published to a dead-letter topic.
	// Attributes levee.error.class, levee.dlq.topic, levee.dlq.fingerprint,
	// levee.dlq.attempts.
	EventDeadLetter = telemetry.EventDeadLetter
	// EventInvalidContext: the incoming traceparent was rejected and a new
	// trace started. Attribute levee.tracing.invalid_reason (malformed,
	// oversized).
	EventInvalidContext = telemetry.EventInvalidContext
	// EventDedupDuplicate: the dedup stage acked a duplicate of a done
	// identity without running the handler. No attributes.
	EventDedupDuplicate = telemetry.EventDedupDuplicate
	// EventDedupInProgress: the dedup stage deferred the message because
	// another delivery holds its identity's claim. Attribute
	// levee.dedup.retry_after (s).
	EventDedupInProgress = telemetry.EventDedupInProgress
)
