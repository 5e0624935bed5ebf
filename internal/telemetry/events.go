package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Span event names added to the consumer span (trace.SpanFromContext(
// msg.Context())). docs/TELEMETRY.md lists them with their attributes. The
// Add* helpers below build the ones whose packages use them; each returns
// at once, without allocating, when the span is not recording (telemetry
// off). The breaker and batch packages add their events themselves, under
// the names listed here.
const (
	EventRetry            = "levee.retry"
	EventBreakerWait      = "levee.breaker.wait"
	EventBreakerWaitDone  = "levee.breaker.wait.done"
	EventBreakerDrainWait = "levee.breaker.drain.wait"
	EventPriorityWait     = "levee.priority.wait"
	EventRateLimitWait    = "levee.ratelimit.wait"
	EventBatch            = "batch"
	EventDeadLetter       = "levee.dead_letter"
	EventInvalidContext   = "levee.tracing.invalid_context"
)

// Span event attribute keys of the Add* helpers. Durations are float64
// seconds.
const (
	AttrRetryAttempt      = attribute.Key("levee.retry.attempt")
	AttrRetryDelay        = attribute.Key("levee.retry.delay")
	AttrWaitDuration      = attribute.Key("levee.wait.duration")
	AttrPriorityBase      = attribute.Key("levee.priority.base")
	AttrPriorityEffective = attribute.Key("levee.priority.effective")
	AttrDeadLetterTopic   = attribute.Key("levee.dlq.topic")
	AttrInvalidReason     = attribute.Key("levee.tracing.invalid_reason")
)

func recording(ctx context.Context) (trace.Span, bool) {
	s := trace.SpanFromContext(ctx)
	return s, s.IsRecording()
}

// AddRetryEvent records a retry: attempt is the 1-based number of the
// attempt that failed, delay the backoff before the next one, class the
// failed attempt's error class.
func AddRetryEvent(ctx context.Context, attempt int, delay time.Duration, class string) {
	if s, ok := recording(ctx); ok {
		s.AddEvent(EventRetry, trace.WithAttributes(
			AttrRetryAttempt.Int(attempt), AttrRetryDelay.Float64(delay.Seconds()), AttrSpanClass.String(class)))
	}
}

// AddPriorityWaitEvent records the wait for a scheduler slot, the message's
// base priority and the effective (aged) priority it was granted at.
func AddPriorityWaitEvent(ctx context.Context, wait time.Duration, base, effective int) {
	if s, ok := recording(ctx); ok {
		s.AddEvent(EventPriorityWait, trace.WithAttributes(
			AttrWaitDuration.Float64(wait.Seconds()), AttrPriorityBase.Int(base), AttrPriorityEffective.Int(effective)))
	}
}

// AddRateLimitWaitEvent records the wait for a rate-limit token.
func AddRateLimitWaitEvent(ctx context.Context, wait time.Duration) {
	if s, ok := recording(ctx); ok {
		s.AddEvent(EventRateLimitWait, trace.WithAttributes(AttrWaitDuration.Float64(wait.Seconds())))
	}
}

// AddDeadLetterEvent records a confirmed dead-letter publish to topic with
// the error class. Call MarkDeadLettered as well so the outcome is reported.
func AddDeadLetterEvent(ctx context.Context, class, topic string) {
	if s, ok := recording(ctx); ok {
		s.AddEvent(EventDeadLetter, trace.WithAttributes(
			AttrSpanClass.String(class), AttrDeadLetterTopic.String(topic)))
	}
}
