package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Span event names added to the consumer span (trace.SpanFromContext(
// msg.Context())). docs/TELEMETRY.md lists them with their attributes. The
// Add* helpers below build the dlq's; each returns at once, without
// allocating, when the span is not recording (telemetry off). The breaker
// and batch packages add their events themselves, under the names listed
// here; the priority package adds its own (priority.EventAcquired,
// priority.EventRejected); the dedup package adds its through
// AddDedupEvent; the ratelimit package adds none.
const (
	EventRetry            = "levee.retry"
	EventDeferral         = "levee.deferral"
	EventBreakerWait      = "levee.breaker.wait"
	EventBreakerWaitDone  = "levee.breaker.wait.done"
	EventBreakerDrainWait = "levee.breaker.drain.wait"
	EventBatch            = "batch"
	EventDeadLetter       = "levee.dead_letter"
	EventInvalidContext   = "levee.tracing.invalid_context"
	EventDedupDuplicate   = "levee.dedup.duplicate"
	EventDedupInProgress  = "levee.dedup.in_progress"
)

// Span event attribute keys of the Add* helpers. Durations are float64
// seconds.
const (
	AttrRetryAttempt          = attribute.Key("levee.retry.attempt")
	AttrRetryDelay            = attribute.Key("levee.retry.delay")
	AttrDeferralDelay         = attribute.Key("levee.deferral.delay")
	AttrErrorMessage          = attribute.Key("levee.error.message")
	AttrDeadLetterTopic       = attribute.Key("levee.dlq.topic")
	AttrDeadLetterFingerprint = attribute.Key("levee.dlq.fingerprint")
	AttrDeadLetterAttempts    = attribute.Key("levee.dlq.attempts")
	AttrInvalidReason         = attribute.Key("levee.tracing.invalid_reason")
	AttrDedupRetryAfter       = attribute.Key("levee.dedup.retry_after")
)

func recording(ctx context.Context) (trace.Span, bool) {
	s := trace.SpanFromContext(ctx)
	return s, s.IsRecording()
}

// AddRetryEvent records a retry: attempt is the 1-based number of the
// attempt that failed, delay the backoff before the next one, class the
// failed attempt's error class and errMsg its (bounded) message.
func AddRetryEvent(ctx context.Context, attempt int, delay time.Duration, class, errMsg string) {
	if s, ok := recording(ctx); ok {
		s.AddEvent(EventRetry, trace.WithAttributes(
			AttrRetryAttempt.Int(attempt), AttrRetryDelay.Float64(delay.Seconds()), AttrSpanClass.String(class),
			AttrErrorMessage.String(errMsg)))
	}
}

// AddDeferralEvent records a deferral waited in process: delay is the wait
// that follows and errMsg the deferral's (bounded) message.
func AddDeferralEvent(ctx context.Context, delay time.Duration, errMsg string) {
	if s, ok := recording(ctx); ok {
		s.AddEvent(EventDeferral, trace.WithAttributes(
			AttrDeferralDelay.Float64(delay.Seconds()), AttrErrorMessage.String(errMsg)))
	}
}

// AddDeadLetterEvent records a confirmed dead-letter publish to topic with
// the error class, the failure group's fingerprint and the attempts made.
// Call MarkDeadLettered as well so the outcome is reported.
func AddDeadLetterEvent(ctx context.Context, class, topic, fingerprint string, attempts int) {
	if s, ok := recording(ctx); ok {
		s.AddEvent(EventDeadLetter, trace.WithAttributes(
			AttrSpanClass.String(class), AttrDeadLetterTopic.String(topic),
			AttrDeadLetterFingerprint.String(fingerprint), AttrDeadLetterAttempts.Int(attempts)))
	}
}

// AddDedupEvent records why a dedup stage did not run the handler: event
// is EventDedupDuplicate (the identity is done: acked without running) or
// EventDedupInProgress (another delivery holds the identity's claim:
// deferred by retryAfter).
func AddDedupEvent(ctx context.Context, event string, retryAfter time.Duration) {
	s, ok := recording(ctx)
	if !ok {
		return
	}
	if event == EventDedupInProgress {
		s.AddEvent(event, trace.WithAttributes(AttrDedupRetryAfter.Float64(retryAfter.Seconds())))
		return
	}
	s.AddEvent(event)
}
