package batch

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/internal/telemetry"
)

const component = "batch"

// Attribute keys of the batch instruments and span.
const (
	// AttrReason is the flush reason: size, bytes, wait or close.
	AttrReason = attribute.Key("reason")
	// AttrOutcome is the batch outcome: ok, partial, error or panic.
	AttrOutcome = attribute.Key("outcome")
	// AttrLeft says why messages left without a result from the batch func:
	// canceled, max_hold or closed.
	AttrLeft = attribute.Key("reason")
)

// Span attribute and event names.
const (
	spanAttrCount  = attribute.Key("messaging.batch.message_count")
	spanAttrReason = attribute.Key("levee.batch.flush_reason")
	spanAttrBytes  = attribute.Key("levee.batch.bytes")
	eventBatch     = "batch"
	eventAttrTrace = attribute.Key("levee.batch.trace_id")
	eventAttrSpan  = attribute.Key("levee.batch.span_id")
)

type reason uint8

const (
	reasonSize reason = iota
	reasonBytes
	reasonWait
	reasonClose
	reasonHold
	numReasons
)

var reasonNames = [numReasons]string{"size", "bytes", "wait", "close", "hold"}

func (r reason) String() string { return reasonNames[r] }

type outcome uint8

const (
	outcomeOK outcome = iota
	outcomePartial
	outcomeError
	outcomePanic
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "partial", "error", "panic"}

type leftReason uint8

const (
	leftCanceled leftReason = iota
	leftMaxHold
	leftClosed
	numLeft
)

var leftNames = [numLeft]string{"canceled", "max_hold", "closed"}

// instruments are the batch metrics; a nil *instruments records nothing.
type instruments struct {
	size     metric.Int64Histogram
	duration metric.Float64Histogram
	leftC    metric.Int64Counter
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	m := telemetry.Meter(mp)
	size, err := m.Int64Histogram(telemetry.Name(component, "size"),
		metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Messages handed to the batch func per batch."),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000))
	if err != nil {
		return nil, err
	}
	dur, err := m.Float64Histogram(telemetry.Name(component, "duration"),
		metric.WithUnit(telemetry.UnitSeconds),
		metric.WithDescription("Time the batch func took per batch."),
		metric.WithExplicitBucketBoundaries(telemetry.WorkBuckets()...))
	if err != nil {
		return nil, err
	}
	left, err := m.Int64Counter(telemetry.Name(component, "left"),
		metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Messages that got no result from the batch func: context ended before the flush, max hold, or shutdown."))
	if err != nil {
		return nil, err
	}
	return &instruments{size: size, duration: dur, leftC: left}, nil
}

// attrSet holds the precomputed measurement options of one handler.
type attrSet struct {
	handler, topic string
	size           [numReasons]metric.MeasurementOption
	duration       [numReasons][numOutcomes]metric.MeasurementOption
	left           [numLeft]metric.MeasurementOption
}

// newAttrSet resolves the handler and topic from the first message's
// context (the router puts them there).
func (b *Batcher) newAttrSet(ctx context.Context) *attrSet {
	s := &attrSet{handler: message.HandlerNameFromCtx(ctx), topic: message.SubscribeTopicFromCtx(ctx)}
	if b.inst == nil {
		return s
	}
	for r := range numReasons {
		rk := AttrReason.String(reasonNames[r])
		s.size[r] = telemetry.Attrs(s.handler, s.topic, rk)
		for o := range numOutcomes {
			s.duration[r][o] = telemetry.Attrs(s.handler, s.topic, rk, AttrOutcome.String(outcomeNames[o]))
		}
	}
	for l := range numLeft {
		s.left[l] = telemetry.Attrs(s.handler, s.topic, AttrLeft.String(leftNames[l]))
	}
	return s
}

func (in *instruments) batch(s *attrSet, r reason, o outcome, n int, d time.Duration) {
	if in == nil {
		return
	}
	ctx := context.Background()
	in.size.Record(ctx, int64(n), s.size[r])
	in.duration.Record(ctx, d.Seconds(), s.duration[r][o])
}

func (in *instruments) left(s *attrSet, l leftReason, n int) {
	if in == nil || n == 0 {
		return
	}
	in.leftC.Add(context.Background(), int64(n), s.left[l])
}

// memberContext returns msg's context for the batch span to link: with
// its own span context (the consumer span of the tracing slot), or else
// with the W3C trace context its metadata carries (a Batcher traced
// without the tracing slot), so the batch still leads back to every
// message's trace.
func memberContext(msg *message.Message) context.Context {
	ctx := msg.Context()
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	if l, ok := telemetry.LinkFromMetadata(msg.Metadata); ok {
		return trace.ContextWithRemoteSpanContext(ctx, l.SpanContext)
	}
	return ctx
}

// startSpan starts the batch span, linked to every message's span context,
// and adds a "batch" event to every message's span.
func (b *Batcher) startSpan(ctx context.Context, bt *pending, ctxs []context.Context) (context.Context, trace.Span) {
	links := make([]trace.Link, 0, len(ctxs))
	for _, c := range ctxs {
		if sc := trace.SpanContextFromContext(c); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	name := "batch"
	if bt.attrs.handler != "" {
		name = "batch " + bt.attrs.handler
	}
	ctx, span := b.tracer.Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...),
		trace.WithAttributes(
			spanAttrCount.Int(len(ctxs)),
			spanAttrReason.String(bt.reason.String()),
			spanAttrBytes.Int(bt.bytes),
			telemetry.AttrHandler.String(bt.attrs.handler),
			telemetry.AttrTopic.String(bt.attrs.topic),
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(bt.attrs.topic),
		))
	sc := span.SpanContext()
	ev := trace.WithAttributes(
		eventAttrTrace.String(sc.TraceID().String()),
		eventAttrSpan.String(sc.SpanID().String()),
		spanAttrCount.Int(len(ctxs)),
	)
	for _, c := range ctxs {
		if s := trace.SpanFromContext(c); s.IsRecording() {
			s.AddEvent(eventBatch, ev)
		}
	}
	return ctx, span
}

func endSpan(span trace.Span, o outcome, err error) {
	span.SetAttributes(AttrOutcome.String(outcomeNames[o]))
	if err != nil && o != outcomeOK {
		telemetry.RecordError(span, err)
	}
	span.End()
}
