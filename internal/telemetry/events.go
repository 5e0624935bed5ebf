package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Span event names that the concern packages add to the consumer span
// (trace.SpanFromContext(msg.Context())). docs/TELEMETRY.md lists them with
// their attributes. The Add* helpers below build them; each returns at once,
// without allocating, when the span is not recording (telemetry off).
const (
	EventRetry          = "levee.retry"
	EventBreakerWait    = "levee.breaker.wait"
	EventPriorityWait   = "levee.priority.wait"
	EventRateLimitWait  = "levee.ratelimit.wait"
	EventBatch          = "levee.batch"
	EventDeadLetter     = "levee.dead_letter"
	EventInvalidContext = "levee.tracing.invalid_context"
)

// Span event attribute keys. Durations are float64 seconds.
const (
	AttrRetryAttempt      = attribute.Key("levee.retry.attempt")
	AttrRetryDelay        = attribute.Key("levee.retry.delay")
	AttrWaitDuration      = attribute.Key("levee.wait.duration")
	AttrBreakerState      = attribute.Key("levee.breaker.state")
	AttrPriorityBase      = attribute.Key("levee.priority.base")
	AttrPriorityEffective = attribute.Key("levee.priority.effective")
	AttrBatchID           = attribute.Key("levee.batch.id")
	AttrBatchSize         = attribute.Key("levee.batch.size")
	AttrBatchIndex        = attribute.Key("levee.batch.index")
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

// AddBreakerWaitEvent records that the message waited wait for the breaker
// (open, or half-open drain); state is the state it waited in.
func AddBreakerWaitEvent(ctx context.Context, wait time.Duration, state string) {
	if s, ok := recording(ctx); ok {
		s.AddEvent(EventBreakerWait, trace.WithAttributes(
			AttrWaitDuration.Float64(wait.Seconds()), AttrBreakerState.String(state)))
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

// AddBatchEvent records that the message was processed as member index
// (0-based) of a batch of size messages; batchID is the batch span's span
// id or another id that names the batch.
func AddBatchEvent(ctx context.Context, batchID string, size, index int) {
	if s, ok := recording(ctx); ok {
		s.AddEvent(EventBatch, trace.WithAttributes(
			AttrBatchID.String(batchID), AttrBatchSize.Int(size), AttrBatchIndex.Int(index)))
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
