package tracing

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/telemetry"
)

// Span attribute keys Levee adds next to the messaging semantic conventions.
const (
	// AttrHandler is the span attribute naming the Watermill handler.
	AttrHandler = attribute.Key("levee.handler")
	// AttrOutcome is the consumer span attribute with the delivery's
	// outcome: "acked", "nacked" or "dead_lettered".
	AttrOutcome = telemetry.AttrSpanOutcome
	// AttrErrorClass is the consumer span attribute with the error class of
	// a nacked or dead-lettered delivery.
	AttrErrorClass = telemetry.AttrSpanClass
	// AttrInvalidParent is set to true on a consumer span that started a new
	// trace because the incoming traceparent was malformed or oversized.
	AttrInvalidParent = attribute.Key("levee.tracing.invalid_parent")
	// AttrLinkType names why a span links to another ("replay_of").
	AttrLinkType = attribute.Key("levee.link.type")
	// AttrDeliveryCount is the transport's 1-based delivery count, from the
	// metadata key levee_delivery_count that adapters write; absent when
	// the transport has none or the value is not a positive integer.
	AttrDeliveryCount = attribute.Key("levee.delivery_count")
)

// deliveryCount parses the delivery count defensively: only a positive
// decimal integer of at most 9 digits counts.
func deliveryCount(md message.Metadata) (int, bool) {
	s := md[levee.KeyDeliveryCount]
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// Outcome values of AttrOutcome (and of the metric attribute outcome).
const (
	OutcomeAcked        = telemetry.OutcomeAcked
	OutcomeNacked       = telemetry.OutcomeNacked
	OutcomeDeferred     = telemetry.OutcomeDeferred
	OutcomeDeadLettered = telemetry.OutcomeDeadLettered
	OutcomeCanceled     = telemetry.OutcomeCanceled
)

var attrLinkReplayOf = AttrLinkType.String("replay_of")

// Tracer traces message handling: a consumer span per delivery, continued
// from the trace context in the message metadata; trace context injected
// into every produced message; producer spans for published messages; and
// replay spans linked to the original trace. Create it with New. A Tracer is
// safe for concurrent use; it holds no goroutines and needs no Close.
type Tracer struct {
	cfg     config
	on      bool
	checkTP bool // the propagator reads traceparent: validate it
	tracer  trace.Tracer
	invalid metric.Int64Counter
	// The outcome attributes of the common ends, built once: passing a
	// prebuilt slice to SetAttributes allocates nothing.
	acked, deferred []attribute.KeyValue
}

// New returns a Tracer. It returns an error wrapping ErrInvalidConfig when
// an option is invalid. Without WithTracerProvider the Tracer is off and its
// middleware and decorator are pass-throughs.
func New(opts ...Option) (*Tracer, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	t := &Tracer{cfg: cfg, on: cfg.tp != nil, tracer: telemetry.Tracer(cfg.tp), checkTP: slices.Contains(cfg.prop.Fields(), KeyTraceparent),
		acked: []attribute.KeyValue{AttrOutcome.String(OutcomeAcked)}, deferred: []attribute.KeyValue{AttrOutcome.String(OutcomeDeferred)}}
	t.invalid, err = telemetry.Meter(cfg.mp).Int64Counter(MetricInvalidContext,
		metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Deliveries whose traceparent was malformed or oversized; each started a new trace."))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, MetricInvalidContext, err)
	}
	return t, nil
}

// Enabled reports whether the Tracer has a tracer provider.
func (t *Tracer) Enabled() bool { return t.on }

// consumerInfo is what a middleware wrapper computes once, on its first
// message, from the handler name and topic in the message context.
type consumerInfo struct {
	spanName   string
	static     []trace.SpanStartOption // the span kind and the static attributes
	invalidOpt []metric.AddOption
	args       sync.Pool // of *spanArgs
}

// maxDynAttrs is how many attributes a consumer span has per delivery:
// message id, body size, delivery count, invalid parent.
const maxDynAttrs = 4

// spanArgs is the per-delivery part of a consumer span's start options,
// reused across deliveries: the span's attributes are copied by the SDK
// when the span starts, so the array and the options pointing into it can
// be filled again for the next one. Starting a span then allocates only
// what the SDK itself allocates.
type spanArgs struct {
	attrs [maxDynAttrs]attribute.KeyValue
	withN [maxDynAttrs + 1]trace.SpanStartOption // withN[n] is WithAttributes(attrs[:n]...)
	opts  []trace.SpanStartOption
}

func (in *consumerInfo) getArgs() *spanArgs {
	if a, ok := in.args.Get().(*spanArgs); ok {
		return a
	}
	a := &spanArgs{opts: make([]trace.SpanStartOption, 0, len(in.static)+3)}
	for n := range a.withN {
		a.withN[n] = trace.WithAttributes(a.attrs[:n]...)
	}
	return a
}

func (in *consumerInfo) putArgs(a *spanArgs) {
	a.attrs = [maxDynAttrs]attribute.KeyValue{} // hold no message's strings
	clear(a.opts[:cap(a.opts)])
	a.opts = a.opts[:0]
	in.args.Put(a)
}

type consumer struct {
	t    *Tracer
	next message.HandlerFunc
	info atomic.Pointer[consumerInfo]
}

// Middleware is the tracing middleware, for the outermost slot of
// middleware.Stack. Per delivery it extracts the trace context and baggage
// from the metadata (a malformed or oversized traceparent starts a new trace
// and is counted), starts a "process <topic>" span of kind consumer with the
// messaging attributes, puts it in the message context for the layers
// inside (restored afterwards), injects it into every produced message, and
// ends it with the outcome: acked, nacked (with the error class) or
// dead_lettered (with the class an inner layer recorded through
// internal/telemetry.MarkDeadLettered). With tracing off it returns next.
func (t *Tracer) Middleware(next message.HandlerFunc) message.HandlerFunc {
	if !t.on {
		return next
	}
	c := &consumer{t: t, next: next}
	return c.handle
}

func (c *consumer) infoFor(ctx context.Context) *consumerInfo {
	if in := c.info.Load(); in != nil {
		return in
	}
	handler := message.HandlerNameFromCtx(ctx)
	topic := message.SubscribeTopicFromCtx(ctx)
	in := &consumerInfo{
		spanName: spanName("process", topic),
		static: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(c.t.staticAttrs(
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(topic),
			AttrHandler.String(handler),
		)...)},
		invalidOpt: []metric.AddOption{telemetry.Attrs(handler, topic)},
	}
	if c.info.CompareAndSwap(nil, in) {
		return in
	}
	return c.info.Load()
}

func spanName(op, topic string) string {
	if topic == "" {
		return op
	}
	return op + " " + topic
}

// staticAttrs returns attrs plus the configured system and consumer group.
func (t *Tracer) staticAttrs(attrs ...attribute.KeyValue) []attribute.KeyValue {
	if t.cfg.system != "" {
		attrs = append(attrs, semconv.MessagingSystemKey.String(t.cfg.system))
	}
	if t.cfg.group != "" {
		attrs = append(attrs, semconv.MessagingConsumerGroupName(t.cfg.group))
	}
	return attrs
}

func (c *consumer) handle(msg *message.Message) (out []*message.Message, err error) {
	orig := msg.Context()
	in := c.infoFor(orig)
	parent, reason := extract(orig, c.t.cfg.prop, msg.Metadata, c.t.checkTP)

	a := in.getArgs()
	a.attrs[0], a.attrs[1] = semconv.MessagingMessageID(telemetry.SpanText(msg.UUID)), semconv.MessagingMessageBodySize(len(msg.Payload))
	n := 2
	if dc, ok := deliveryCount(msg.Metadata); ok {
		a.attrs[n] = AttrDeliveryCount.Int(dc)
		n++
	}
	if reason != "" {
		a.attrs[n] = AttrInvalidParent.Bool(true)
		n++
	}
	a.opts = append(append(a.opts, in.static...), a.withN[n])
	if reason != "" {
		// Never continue a trace we could not read, nor the context's own.
		a.opts = append(a.opts, trace.WithNewRoot())
	}
	if l, ok := originalLink(msg.Metadata); ok {
		a.opts = append(a.opts, trace.WithLinks(l))
	}
	ctx, span := c.t.tracer.Start(parent, in.spanName, a.opts...)
	in.putArgs(a)
	if reason != "" {
		c.t.invalid.Add(ctx, 1, in.invalidOpt...)
		span.AddEvent(telemetry.EventInvalidContext, trace.WithAttributes(telemetry.AttrInvalidReason.String(reason)))
	}
	ctx, rec := telemetry.WithOutcome(ctx)
	msg.SetContext(ctx)

	ended := false
	defer func() {
		msg.SetContext(orig)
		if ended {
			return
		}
		// next panicked (no recover slot): end the span, then re-panic.
		r := recover()
		if r == nil { // runtime.Goexit
			span.End()
			return
		}
		span.SetAttributes(AttrOutcome.String(OutcomeNacked), AttrErrorClass.String(string(levee.ClassPanic)), semconv.ErrorTypeOther)
		span.SetStatus(codes.Error, telemetry.SpanText(fmt.Sprintf("panic: %v", r)))
		span.End()
		panic(r)
	}()

	out, err = c.next(msg)

	if len(out) > 0 {
		c.t.injectProduced(ctx, span, out)
	}
	c.t.endConsumer(span, rec, msg, err)
	ended = true
	return out, err
}

// injectProduced gives every produced message the consumer span as parent:
// in its context (unless it already has a valid span context of its own),
// so a decorated publisher parents its producer span there, and in its
// metadata, so the trace continues downstream even without the decorator.
func (t *Tracer) injectProduced(ctx context.Context, span trace.Span, out []*message.Message) {
	b := baggage.FromContext(ctx)
	for _, m := range out {
		if m == nil {
			continue
		}
		mctx := m.Context()
		if !trace.SpanContextFromContext(mctx).IsValid() {
			mctx = trace.ContextWithSpan(mctx, span)
		}
		mctx = baggageOr(mctx, b)
		m.SetContext(mctx)
		inject(mctx, t.cfg.prop, t.checkTP, m)
	}
}

func (t *Tracer) endConsumer(span trace.Span, rec *telemetry.Outcome, msg *message.Message, err error) {
	switch {
	case telemetry.IsCanceled(err):
		// Handed back (the subscriber is closing) or cancelled: neither
		// success nor failure, no error status.
		span.SetAttributes(AttrOutcome.String(OutcomeCanceled))
	case levee.IsDeferral(err):
		// Backpressure, not failure: the handler was not run.
		span.SetAttributes(t.deferred...)
	case err != nil:
		span.SetAttributes(AttrOutcome.String(OutcomeNacked),
			AttrErrorClass.String(telemetry.ErrorClass(err)))
		telemetry.RecordError(span, err) // and error.type
	default:
		if class, ok := rec.DeadLettered(); ok {
			span.SetAttributes(AttrOutcome.String(OutcomeDeadLettered), AttrErrorClass.String(class), errorType(rec.Err()))
			span.SetStatus(codes.Error, "dead-lettered ("+class+")")
		} else if telemetry.HandlerNacked(msg) {
			// The handler Nacked it itself and returned nil: the
			// router's Ack does nothing and the broker redelivers it.
			span.SetAttributes(AttrOutcome.String(OutcomeNacked), AttrErrorClass.String(string(levee.ClassTransient)), semconv.ErrorTypeOther)
			span.SetStatus(codes.Error, "nacked by the handler")
		} else {
			span.SetAttributes(t.acked...)
		}
	}
	span.End()
}

// errorType is the error.type of a failed span: semconv.ErrorType(err), or
// "_OTHER" when err is nil. The semantic conventions require it on every
// span whose operation failed (status Error), and on no other.
func errorType(err error) attribute.KeyValue {
	if err == nil {
		return semconv.ErrorTypeOther
	}
	return semconv.ErrorType(err)
}
