package tracing

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/internal/telemetry"
)

// Metrics is the handler metrics middleware, for the metrics slot of
// middleware.Stack (just inside tracing): a duration histogram and an
// outcome counter per handler. Create it with NewMetrics. A Metrics is safe
// for concurrent use; it holds no goroutines and needs no Close.
type Metrics struct {
	on       bool
	duration metric.Float64Histogram
	messages metric.Int64Counter
}

// Instrument names (see docs/TELEMETRY.md). They follow the scheme
// levee.<component>.<name> of internal/telemetry.
const (
	// MetricHandlerDuration is the histogram of handler-chain durations (s).
	MetricHandlerDuration = "levee.handler.duration"
	// MetricHandlerMessages is the counter of deliveries by outcome.
	MetricHandlerMessages = "levee.handler.messages"
	// MetricInvalidContext counts deliveries with an unreadable traceparent.
	MetricInvalidContext = "levee.tracing.invalid_context"
)

// NewMetrics returns a Metrics. Only WithMeterProvider matters to it; other
// options are validated and ignored. Without a meter provider the Metrics is
// off and its middleware returns the handler unchanged. It returns an error
// wrapping ErrInvalidConfig when an option is invalid or an instrument
// cannot be created.
func NewMetrics(opts ...Option) (*Metrics, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	m := &Metrics{on: cfg.mp != nil}
	meter := telemetry.Meter(cfg.mp)
	m.duration, err = meter.Float64Histogram(MetricHandlerDuration,
		metric.WithUnit(telemetry.UnitSeconds),
		metric.WithDescription("Duration of the handler chain per delivery, by outcome."),
		metric.WithExplicitBucketBoundaries(telemetry.WorkBuckets()...))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, MetricHandlerDuration, err)
	}
	m.messages, err = meter.Int64Counter(MetricHandlerMessages,
		metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Deliveries handled, by outcome (acked, nacked, deferred, dead_lettered) and error class."))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, MetricHandlerMessages, err)
	}
	return m, nil
}

// Enabled reports whether the Metrics has a meter provider.
func (m *Metrics) Enabled() bool { return m.on }

// outcomeOpts holds the precomputed measurement options of one handler:
// one for acked, and per class one for nacked and one for dead_lettered.
type outcomeOpts struct {
	acked    measureOpts
	deferred measureOpts
	canceled measureOpts
	nacked   map[string]measureOpts
	dead     map[string]measureOpts
}

// measureOpts are one attribute set as ready-made variadic arguments, so a
// measurement allocates no option slice.
type measureOpts struct {
	record []metric.RecordOption
	add    []metric.AddOption
}

func newMeasureOpts(handler, topic string, extra ...attribute.KeyValue) measureOpts {
	opt := telemetry.Attrs(handler, topic, extra...)
	return measureOpts{record: []metric.RecordOption{opt}, add: []metric.AddOption{opt}}
}

func newOutcomeOpts(handler, topic string) *outcomeOpts {
	o := &outcomeOpts{
		acked:    newMeasureOpts(handler, topic, telemetry.AttrOutcome.String(telemetry.OutcomeAcked)),
		deferred: newMeasureOpts(handler, topic, telemetry.AttrOutcome.String(telemetry.OutcomeDeferred)),
		canceled: newMeasureOpts(handler, topic, telemetry.AttrOutcome.String(telemetry.OutcomeCanceled)),
		nacked:   map[string]measureOpts{},
		dead:     map[string]measureOpts{},
	}
	for _, class := range append(telemetry.KnownClasses(), telemetry.ClassOther) {
		o.nacked[class] = newMeasureOpts(handler, topic,
			telemetry.AttrOutcome.String(telemetry.OutcomeNacked), telemetry.AttrClass.String(class))
		o.dead[class] = newMeasureOpts(handler, topic,
			telemetry.AttrOutcome.String(telemetry.OutcomeDeadLettered), telemetry.AttrClass.String(class))
	}
	return o
}

func (o *outcomeOpts) pick(outcome map[string]measureOpts, class string) measureOpts {
	if opt, ok := outcome[class]; ok {
		return opt
	}
	return outcome[telemetry.ClassOther]
}

type measured struct {
	m    *Metrics
	next message.HandlerFunc
	opts atomic.Pointer[outcomeOpts]
}

// Middleware is the metrics middleware. Per delivery it records the
// duration of next in levee.handler.duration and one count in
// levee.handler.messages, both with the attributes handler, topic, outcome
// (acked, nacked, deferred, canceled, dead_lettered) and, on nacked and
// dead_lettered, class (the error class; transient for a handler that
// Nacked the message itself and returned nil, which is redelivered,
// or the class recorded by the dlq through
// internal/telemetry.MarkDeadLettered; classes outside the five shared ones
// are recorded as "other"). A panic in next (a stack without a recover
// slot or a dlq, whose panic Watermill's router recovers and Nacks) is
// recorded as nacked with class panic, and goes on. It builds no
// attributes per message. With metrics off it returns next.
func (m *Metrics) Middleware(next message.HandlerFunc) message.HandlerFunc {
	if !m.on {
		return next
	}
	w := &measured{m: m, next: next}
	return w.handle
}

func (w *measured) optsFor(ctx context.Context) *outcomeOpts {
	if o := w.opts.Load(); o != nil {
		return o
	}
	o := newOutcomeOpts(message.HandlerNameFromCtx(ctx), message.SubscribeTopicFromCtx(ctx))
	if w.opts.CompareAndSwap(nil, o) {
		return o
	}
	return w.opts.Load()
}

func (w *measured) handle(msg *message.Message) ([]*message.Message, error) {
	orig := msg.Context()
	opts := w.optsFor(orig)
	ctx, rec := telemetry.WithOutcome(orig)
	if ctx != orig {
		msg.SetContext(ctx)
		defer msg.SetContext(orig)
	}
	start := time.Now()
	returned := false
	defer func() {
		if !returned {
			// next panicked (no recover slot, no dlq): Watermill's router
			// recovers the panic and Nacks, so it is a nacked delivery of
			// class panic. The panic goes on unrecovered, with its stack.
			w.record(ctx, opts.pick(opts.nacked, string(levee.ClassPanic)), time.Since(start).Seconds())
		}
	}()
	out, err := w.next(msg)
	returned = true
	elapsed := time.Since(start).Seconds()

	var opt measureOpts
	if err != nil {
		switch {
		case telemetry.IsCanceled(err):
			opt = opts.canceled
		case levee.IsDeferral(err):
			opt = opts.deferred
		default:
			opt = opts.pick(opts.nacked, telemetry.ErrorClass(err))
		}
	} else if class, ok := rec.DeadLettered(); ok {
		opt = opts.pick(opts.dead, class)
	} else if telemetry.HandlerNacked(msg) {
		// The handler Nacked it itself: redelivered, as after an error
		// of the default class.
		opt = opts.nacked[string(levee.ClassTransient)]
	} else {
		opt = opts.acked
	}
	w.record(ctx, opt, elapsed)
	return out, err
}

func (w *measured) record(ctx context.Context, opt measureOpts, elapsed float64) {
	w.m.duration.Record(ctx, elapsed, opt.record...)
	w.m.messages.Add(ctx, 1, opt.add...)
}
