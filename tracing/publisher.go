package tracing

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/internal/telemetry"
)

// DecoratePublisher wraps pub so that every published message gets a
// "publish <topic>" span of kind producer, whose context is injected into
// the message metadata before the message is sent. The span's parent is the
// span in the message context (a message produced inside the Tracer's
// middleware carries the consumer span), else the trace context already in
// its metadata; otherwise it starts a new trace. The span ends when the
// underlying Publish returns, with its error. It has the
// message.PublisherDecorator signature, so it can be passed to
// Router.AddPublisherDecorators, and it also wraps a dlq publisher. With
// tracing off it returns pub unchanged, and so it does a publisher that
// DecoratePublisher (of any Tracer) already wrapped: a message is never
// given two producer spans. It never returns an error.
func (t *Tracer) DecoratePublisher(pub message.Publisher) (message.Publisher, error) {
	if _, done := pub.(*publisher); !t.on || done {
		return pub, nil
	}
	return &publisher{Publisher: pub, t: t}, nil
}

// PublisherDecorator returns DecoratePublisher as a message.PublisherDecorator.
func (t *Tracer) PublisherDecorator() message.PublisherDecorator { return t.DecoratePublisher }

type publisher struct {
	message.Publisher
	t *Tracer
}

// Publish traces and publishes msgs; see DecoratePublisher.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	name := spanName("publish", topic)
	static := p.t.staticAttrs(
		semconv.MessagingOperationName("publish"),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingDestinationName(topic),
	)
	spans := make([]trace.Span, len(msgs))
	origs := make([]context.Context, len(msgs))
	for i, m := range msgs {
		if m == nil {
			continue
		}
		origs[i] = m.Context()
		parent := origs[i]
		if !trace.SpanContextFromContext(parent).IsValid() {
			parent, _ = extract(parent, p.t.cfg.prop, m.Metadata, p.t.checkTP)
		}
		attrs := make([]attribute.KeyValue, 0, len(static)+2)
		attrs = append(attrs, static...)
		attrs = append(attrs, semconv.MessagingMessageID(telemetry.SpanText(m.UUID)), semconv.MessagingMessageBodySize(len(m.Payload)))
		ctx, span := p.t.tracer.Start(parent, name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
		inject(ctx, p.t.cfg.prop, p.t.checkTP, m)
		m.SetContext(ctx)
		spans[i] = span
	}
	err := p.Publisher.Publish(topic, msgs...)
	for i := len(spans) - 1; i >= 0; i-- { // reverse: a message listed twice gets its first context back
		span := spans[i]
		if span == nil {
			continue
		}
		msgs[i].SetContext(origs[i])
		if err != nil {
			telemetry.RecordError(span, err)
		}
		span.End()
	}
	return err
}
