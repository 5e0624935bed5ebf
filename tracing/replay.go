package tracing

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/telemetry"
)

// StartReplay prepares msg, usually a dead letter, to be published again to
// topic in a new trace linked to its original one. It moves the message's
// traceparent into levee.KeyOriginalTraceparent and its tracestate into
// levee.KeyOriginalTracestate (so the replayed message's
// consumer span links to the original trace even when the replaying process
// does not trace), removes the old trace context keys, and, with tracing on,
// starts a "replay <topic>" root span of kind producer linked to the original
// span context and injects it into the metadata. The caller publishes msg
// and then ends the span (a no-op span with tracing off). Baggage is kept.
func (t *Tracer) StartReplay(ctx context.Context, topic string, msg *message.Message) (context.Context, trace.Span) {
	if msg.Metadata == nil {
		msg.Metadata = make(message.Metadata)
	}
	link, ok := LinkFromMetadata(msg.Metadata)
	if ok {
		msg.Metadata[levee.KeyOriginalTraceparent] = msg.Metadata[KeyTraceparent]
		// The pair moves together: a tracestate left from an earlier
		// replay belongs to another trace.
		if ts := msg.Metadata[KeyTracestate]; ts != "" && len(ts) <= MaxTracestateLen {
			msg.Metadata[levee.KeyOriginalTracestate] = ts
		} else {
			delete(msg.Metadata, levee.KeyOriginalTracestate)
		}
	}
	delete(msg.Metadata, KeyTraceparent)
	delete(msg.Metadata, KeyTracestate)

	opts := []trace.SpanStartOption{
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(t.staticAttrs(
			semconv.MessagingOperationName("replay"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(topic),
			semconv.MessagingMessageID(telemetry.SpanText(msg.UUID)),
		)...),
	}
	if ok {
		link.Attributes = append(link.Attributes, attrLinkReplayOf)
		opts = append(opts, trace.WithLinks(link))
	}
	ctx, span := t.tracer.Start(ctx, spanName("replay", topic), opts...)
	if t.on {
		inject(ctx, t.cfg.prop, t.checkTP, msg)
	}
	return ctx, span
}
