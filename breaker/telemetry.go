package breaker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/internal/telemetry"
)

const component = "breaker"

// Attribute keys of the breaker's instruments (see docs/TELEMETRY.md).
const (
	attrBreaker = attribute.Key("breaker")
	attrFrom    = attribute.Key("from")
	attrTo      = attribute.Key("to")
	attrOutcome = attribute.Key("outcome")
)

// Wait outcomes, the values of the outcome attribute and span events.
const (
	outcomeAdmitted = iota // the breaker let the message through
	outcomeMaxHold         // the wait hit the max hold: Nack
	outcomeCanceled        // the message context ended
	outcomeClosed          // the Breaker was closed
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"admitted", "max_hold", "canceled", "closed"}

// The values of the state gauges levee.breaker.state (Breaker) and
// levee.fleet.breaker.state (FleetBreaker): one enum for both
// (docs/TELEMETRY.md, TestStateGaugesShareOneEnum). Draining is closed with
// the drain's ramp still bounding throughput after a recovery. A dashboard
// or a rule reads the same number the same way for either breaker.
const (
	gaugeClosed   int64 = 0
	gaugeHalfOpen int64 = 1
	gaugeOpen     int64 = 2
	gaugeDraining int64 = 3
)

// stateGaugeDoc is the description of both state gauges.
const stateGaugeDoc = "an enum: 0 closed, 1 half-open, 2 open, 3 draining (closed, throughput still bounded by the drain after a recovery)."

// localGauge is a Breaker's state gauge value: its state, or draining while
// closed (not forced) with the drain's progress below 1.
func localGauge(s State, f Force, progress float64) int64 {
	switch {
	case s == StateOpen:
		return gaugeOpen
	case s == StateHalfOpen:
		return gaugeHalfOpen
	case f != ForceClosed && progress < 1:
		return gaugeDraining
	}
	return gaugeClosed
}

// fleetGauge is a FleetBreaker's state gauge value (fleet.BreakerState
// numbers open and half-open the other way round: they are the store's).
func fleetGauge(s FleetState) int64 {
	switch s {
	case FleetOpen:
		return gaugeOpen
	case FleetHalfOpen:
		return gaugeHalfOpen
	case FleetDraining:
		return gaugeDraining
	}
	return gaugeClosed
}

type instruments struct {
	waitInstruments
	transitions metric.Int64Counter
	reg         metric.Registration
	transAttrs  [3][3]metric.AddOption
	name        string
}

// waitInstruments measure the messages a breaker holds; the Breaker and
// the FleetBreaker share them, so one panel and one alert cover both.
type waitInstruments struct {
	paused    metric.Int64UpDownCounter
	wait      metric.Float64Histogram
	drainWait metric.Float64Histogram
}

func newWaitInstruments(m metric.Meter) (waitInstruments, error) {
	var in waitInstruments
	var err error
	if in.paused, err = m.Int64UpDownCounter(telemetry.Name(component, "paused"),
		metric.WithDescription("Messages waiting while the breaker is open or half-open."), metric.WithUnit(telemetry.UnitMessages)); err != nil {
		return in, err
	}
	if in.wait, err = m.Float64Histogram(telemetry.Name(component, "wait.duration"),
		metric.WithDescription("Time a message waited for an open or half-open breaker."), metric.WithUnit(telemetry.UnitSeconds),
		metric.WithExplicitBucketBoundaries(telemetry.PauseBuckets()...)); err != nil {
		return in, err
	}
	in.drainWait, err = m.Float64Histogram(telemetry.Name(component, "drain.wait.duration"),
		metric.WithDescription("Time a message waited for the drain ramp after recovery."), metric.WithUnit(telemetry.UnitSeconds),
		metric.WithExplicitBucketBoundaries(telemetry.WaitBuckets()...))
	return in, err
}

func newInstruments(b *Breaker) (*instruments, error) {
	m := telemetry.Meter(b.cfg.mp)
	in := &instruments{name: b.cfg.name}
	var err error
	if in.transitions, err = m.Int64Counter(telemetry.Name(component, "transitions"),
		metric.WithDescription("State changes of the breaker."), metric.WithUnit("{transition}")); err != nil {
		return nil, err
	}
	if in.waitInstruments, err = newWaitInstruments(m); err != nil {
		return nil, err
	}
	state, err := m.Int64ObservableGauge(telemetry.Name(component, "state"),
		metric.WithDescription("Breaker state, "+stateGaugeDoc), metric.WithUnit(telemetry.UnitState))
	if err != nil {
		return nil, err
	}
	progress, err := m.Float64ObservableGauge(telemetry.Name(component, "drain.progress"),
		metric.WithDescription("Share of the baseline throughput the drain admits now; 1 when not draining."), metric.WithUnit(telemetry.UnitRatio))
	if err != nil {
		return nil, err
	}
	rate, err := m.Float64ObservableGauge(telemetry.Name(component, "drain.rate"),
		metric.WithDescription("Messages per second the drain admits now; 0 when not draining."), metric.WithUnit("{message}/s"))
	if err != nil {
		return nil, err
	}
	own := metric.WithAttributeSet(attribute.NewSet(attrBreaker.String(b.cfg.name)))
	in.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		p := b.DrainProgress()
		o.ObserveInt64(state, localGauge(b.State(), b.Forced(), p), own)
		o.ObserveFloat64(progress, p, own)
		r := 0.0
		if p < 1 {
			r = p * b.Baseline()
		}
		o.ObserveFloat64(rate, r, own)
		return nil
	}, state, progress, rate)
	if err != nil {
		return nil, err
	}
	for f := range 3 {
		for t := range 3 {
			in.transAttrs[f][t] = metric.WithAttributeSet(attribute.NewSet(
				attrBreaker.String(b.cfg.name), attrFrom.String(State(f).String()), attrTo.String(State(t).String())))
		}
	}
	return in, nil
}

func (in *instruments) transition(from, to State) {
	in.transitions.Add(context.Background(), 1, in.transAttrs[from][to])
}

func (in *instruments) close() error {
	if in.reg == nil {
		return nil
	}
	return in.reg.Unregister()
}

// handlerAttrs are the precomputed attribute options of one handler.
type handlerAttrs struct {
	base     metric.MeasurementOption
	outcomes [numOutcomes]metric.MeasurementOption
}

// loadHandlerAttrs returns the attributes cached in p, resolving them
// from msg (its handler and topic) the first time.
func loadHandlerAttrs(p *atomic.Pointer[handlerAttrs], msg *message.Message, breakerName string) *handlerAttrs {
	if a := p.Load(); a != nil {
		return a
	}
	a := newHandlerAttrs(msg, breakerName)
	if p.CompareAndSwap(nil, a) {
		return a
	}
	return p.Load()
}

func newHandlerAttrs(msg *message.Message, breakerName string) *handlerAttrs {
	ctx := msg.Context()
	h, t := message.HandlerNameFromCtx(ctx), message.SubscribeTopicFromCtx(ctx)
	a := &handlerAttrs{base: telemetry.Attrs(h, t, attrBreaker.String(breakerName))}
	for i := range a.outcomes {
		a.outcomes[i] = telemetry.Attrs(h, t, attrBreaker.String(breakerName), attrOutcome.String(outcomeNames[i]))
	}
	return a
}

// Span events added to the message's span (when one is recording).
const (
	eventWait     = "levee.breaker.wait"
	eventWaitDone = "levee.breaker.wait.done"
	eventDrain    = "levee.breaker.drain.wait"
)

func spanWaitStart(ctx context.Context, s State) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(eventWait, trace.WithAttributes(attribute.String("levee.breaker.state", s.String())))
	}
}

func spanWaitDone(ctx context.Context, outcome int, waited time.Duration) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(eventWaitDone, trace.WithAttributes(
			attribute.String("levee.breaker.outcome", outcomeNames[outcome]),
			attribute.Float64("levee.breaker.waited_s", waited.Seconds())))
	}
}

func spanDrainWait(ctx context.Context, rate float64, waited time.Duration) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(eventDrain, trace.WithAttributes(
			attribute.Float64("levee.breaker.drain.rate", rate),
			attribute.Float64("levee.breaker.waited_s", waited.Seconds())))
	}
}
