package priority

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/levee-dev/levee/internal/telemetry"
)

// Telemetry names (docs/TELEMETRY.md, section priority).
const (
	component = "priority"

	// AttrScheduler names the scheduler (WithName) on every instrument.
	AttrScheduler = attribute.Key("scheduler")
	// AttrPriority is the base priority level.
	AttrPriority = attribute.Key("priority")
	// AttrReason is why a message left the queue without a slot:
	// "queue_full", "max_wait" or "closed".
	AttrReason = attribute.Key("reason")
)

// Reasons carried by AttrReason.
const (
	ReasonQueueFull = "queue_full"
	ReasonMaxWait   = "max_wait"
	ReasonClosed    = "closed"
)

const numReasons = 3

// reasonName is the AttrReason value of reasonIndex i.
func reasonName(i int) string {
	switch i {
	case 0:
		return ReasonQueueFull
	case 1:
		return ReasonMaxWait
	}
	return ReasonClosed
}

// reasonIndex maps a rejection sentinel to its reason index.
func reasonIndex(err error) int {
	switch err {
	case ErrQueueFull:
		return 0
	case ErrMaxWait:
		return 1
	}
	return 2
}

// schedTelemetry holds the instruments of one scheduler.
type schedTelemetry struct {
	wait    metric.Float64Histogram
	shed    metric.Int64Counter
	invalid metric.Int64Counter
	reg     metric.Registration
}

func newSchedTelemetry(s *Scheduler) (*schedTelemetry, error) {
	m := telemetry.Meter(s.cfg.meterProvider)
	t := &schedTelemetry{}
	var err error
	if t.wait, err = m.Float64Histogram(telemetry.Name(component, "wait.duration"),
		metric.WithUnit(telemetry.UnitSeconds),
		metric.WithDescription("Time a message waited for a scheduler slot, per base priority."),
		metric.WithExplicitBucketBoundaries(telemetry.WaitBuckets()...)); err != nil {
		return nil, err
	}
	if t.shed, err = m.Int64Counter(telemetry.Name(component, "shed"),
		metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Messages that left the wait queue without a slot (Nacked), by reason.")); err != nil {
		return nil, err
	}
	if t.invalid, err = m.Int64Counter(telemetry.Name(component, "invalid"),
		metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Messages whose levee_priority value was not an integer; they took the default priority.")); err != nil {
		return nil, err
	}
	depth, err := m.Int64ObservableGauge(telemetry.Name(component, "queue.depth"),
		metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Messages waiting for a slot, per base priority."))
	if err != nil {
		return nil, err
	}
	inUse, err := m.Int64ObservableGauge(telemetry.Name(component, "slots.in_use"),
		metric.WithUnit("{slot}"),
		metric.WithDescription("Scheduler slots held by messages: running, or waiting inside their slot (for a rate-limit token or the drain ramp, in an open batch)."))
	if err != nil {
		return nil, err
	}
	slots, err := m.Int64ObservableGauge(telemetry.Name(component, "slots.limit"),
		metric.WithUnit("{slot}"),
		metric.WithDescription("Configured scheduler slots."))
	if err != nil {
		return nil, err
	}
	name := AttrScheduler.String(s.cfg.name)
	schedOpt := metric.WithAttributeSet(attribute.NewSet(name))
	var levelOpts [Levels]metric.ObserveOption
	for i := range levelOpts {
		levelOpts[i] = metric.WithAttributeSet(attribute.NewSet(name, AttrPriority.Int(MinPriority+i)))
	}
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var waiting [Levels]int
		s.mu.Lock()
		n := s.inUse
		for i := range s.levels {
			waiting[i] = s.levels[i].waiting
		}
		s.mu.Unlock()
		for i, w := range waiting {
			o.ObserveInt64(depth, int64(w), levelOpts[i])
		}
		o.ObserveInt64(inUse, int64(n), schedOpt)
		o.ObserveInt64(slots, int64(s.cfg.slots), schedOpt)
		return nil
	}, depth, inUse, slots)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (t *schedTelemetry) close() error { return t.reg.Unregister() }

// handlerAttrs are one handler's precomputed measurement options, built on
// its first message.
// Each is a one-element slice, passed as opts... so recording does not
// allocate a variadic slice per message.
type handlerAttrs struct {
	wait    [Levels][]metric.RecordOption
	shed    [Levels][numReasons][]metric.AddOption
	invalid []metric.AddOption
}

func newHandlerAttrs(sched, handler, topic string) *handlerAttrs {
	a := &handlerAttrs{}
	s := AttrScheduler.String(sched)
	for i := range a.wait {
		p := AttrPriority.Int(MinPriority + i)
		a.wait[i] = []metric.RecordOption{telemetry.Attrs(handler, topic, s, p)}
		for r := range numReasons {
			a.shed[i][r] = []metric.AddOption{telemetry.Attrs(handler, topic, s, p, AttrReason.String(reasonName(r)))}
		}
	}
	a.invalid = []metric.AddOption{telemetry.Attrs(handler, topic, s)}
	return a
}

// Span event names and attributes added to the message's span (if any,
// and only when it is recording).
const (
	// EventAcquired: the message got a slot after waiting for it (a slot
	// free on arrival adds no event).
	EventAcquired = "levee.priority.acquired"
	// EventRejected: the message left the queue without a slot.
	EventRejected = "levee.priority.rejected"

	// AttrEventPriority is the base priority.
	AttrEventPriority = attribute.Key("levee.priority")
	// AttrEventEffective is base + wait/aging when the slot was granted.
	AttrEventEffective = attribute.Key("levee.priority.effective")
	// AttrEventWait is the wait in seconds.
	AttrEventWait = attribute.Key("levee.priority.wait_s")
	// AttrEventReason is the rejection reason (see AttrReason).
	AttrEventReason = attribute.Key("levee.priority.reason")
)
