package ratelimit

import (
	"context"
	"math"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/levee-dev/levee/internal/telemetry"
)

// Instrument names (docs/TELEMETRY.md, section ratelimit), following
// telemetry.Name: levee.<component>.<name>.
const (
	metricWait      = "levee.ratelimit.wait.duration"
	metricRejected  = "levee.ratelimit.rejected"
	metricLimit     = "levee.ratelimit.limit"
	metricKeys      = "levee.ratelimit.keys"
	metricFallbacks = "levee.ratelimit.key.fallbacks"
	metricAdjust    = "levee.ratelimit.adaptive.adjustments"
)

// Attribute keys of the ratelimit instruments.
const (
	attrLimiter   = attribute.Key("limiter")
	attrReason    = attribute.Key("reason")
	attrDirection = attribute.Key("direction")
)

// instruments are one Limiter's metrics; nil when telemetry is off.
type instruments struct {
	wait      metric.Float64Histogram
	rejected  metric.Int64Counter
	fallbacks metric.Int64Counter
	adjust    metric.Int64Counter
	reg       metric.Registration
	up, down  metric.MeasurementOption
}

func newInstruments(mp metric.MeterProvider, name string, l *Limiter) (*instruments, error) {
	if mp == nil {
		return nil, nil
	}
	m := telemetry.Meter(mp)
	ins := &instruments{
		up:   metric.WithAttributeSet(attribute.NewSet(attrLimiter.String(name), attrDirection.String("increase"))),
		down: metric.WithAttributeSet(attribute.NewSet(attrLimiter.String(name), attrDirection.String("decrease"))),
	}
	var err error
	if ins.wait, err = m.Float64Histogram(metricWait, metric.WithUnit(telemetry.UnitSeconds),
		metric.WithDescription("Time a message waited for a token (admitted messages only)."),
		metric.WithExplicitBucketBoundaries(telemetry.WaitBuckets()...)); err != nil {
		return nil, err
	}
	if ins.rejected, err = m.Int64Counter(metricRejected, metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Messages not admitted (Nacked with a retry-after), by reason.")); err != nil {
		return nil, err
	}
	if ins.fallbacks, err = m.Int64Counter(metricFallbacks, metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Messages limited under the fallback key, by reason.")); err != nil {
		return nil, err
	}
	if ins.adjust, err = m.Int64Counter(metricAdjust, metric.WithUnit("{adjustment}"),
		metric.WithDescription("Changes of the adaptive limit, by direction.")); err != nil {
		return nil, err
	}
	limit, err := m.Float64ObservableGauge(metricLimit, metric.WithUnit("{message}/s"),
		metric.WithDescription("Current rate limit of the limiter (absent while unlimited)."))
	if err != nil {
		return nil, err
	}
	keys, err := m.Int64ObservableGauge(metricKeys, metric.WithUnit("{key}"),
		metric.WithDescription("Live per-key buckets."))
	if err != nil {
		return nil, err
	}
	set := metric.WithAttributeSet(attribute.NewSet(attrLimiter.String(name)))
	ins.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if r := l.Rate(); !math.IsInf(r, 1) {
			o.ObserveFloat64(limit, r, set)
		}
		if l.keys != nil {
			o.ObserveInt64(keys, int64(l.keys.len()), set)
		}
		return nil
	}, limit, keys)
	if err != nil {
		return nil, err
	}
	return ins, nil
}

// handlerAttrs are the precomputed attribute options of one Middleware
// wrapper, resolved from the first message's context.
type handlerAttrs struct {
	base      metric.MeasurementOption
	rejected  [numReasons]metric.MeasurementOption
	fallbacks [numFallbacks]metric.MeasurementOption
}

func resolveAttrs(p *atomic.Pointer[handlerAttrs], name string, msg *message.Message) *handlerAttrs {
	if a := p.Load(); a != nil {
		return a
	}
	ctx := msg.Context()
	handler, topic := message.HandlerNameFromCtx(ctx), message.SubscribeTopicFromCtx(ctx)
	lim := attrLimiter.String(name)
	a := &handlerAttrs{base: telemetry.Attrs(handler, topic, lim)}
	for i := range a.rejected {
		a.rejected[i] = telemetry.Attrs(handler, topic, lim, attrReason.String(reason(i).label()))
	}
	for i := range a.fallbacks {
		a.fallbacks[i] = telemetry.Attrs(handler, topic, lim, attrReason.String(fallbackReason(i).label()))
	}
	p.Store(a)
	return a
}
