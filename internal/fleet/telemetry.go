package fleet

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/levee-dev/levee/internal/telemetry"
)

// Instrument names (docs/TELEMETRY.md and docs/FLEET.md).
const (
	MetricRoundTrips = "levee.fleet.round_trips"
	MetricRoundTrip  = "levee.fleet.round_trip.duration"
	MetricLeased     = "levee.fleet.leased"
	MetricFallbacks  = "levee.fleet.fallbacks"
	MetricDegraded   = "levee.fleet.degraded"
	MetricState      = "levee.fleet.breaker.state"
)

// Attribute keys of the fleet instruments.
const (
	AttrConcern = attribute.Key("concern") // ratelimit or breaker
	AttrName    = attribute.Key("name")    // the limiter's or breaker's name
	AttrResult  = attribute.Key("result")  // ok or error
	AttrMode    = attribute.Key("mode")    // the on_store_error mode
)

// Telemetry is an Observer that records metrics and logs every fallback
// and recovery. Its zero value (and a nil *Telemetry's methods) do nothing.
type Telemetry struct {
	concern, name string
	logger        watermill.LoggerAdapter
	trips         metric.Int64Counter
	tripDur       metric.Float64Histogram
	leased        metric.Int64Counter
	fallbacks     metric.Int64Counter
	degraded      metric.Int64UpDownCounter
	ok, failed    metric.MeasurementOption
	base          metric.MeasurementOption
}

// NewTelemetry returns the Observer of one limiter or breaker. A nil mp
// records no metrics; a nil logger logs nothing.
func NewTelemetry(mp metric.MeterProvider, logger watermill.LoggerAdapter, concern, name string) (*Telemetry, error) {
	t := &Telemetry{concern: concern, name: name, logger: logger}
	if mp == nil {
		return t, nil
	}
	m := telemetry.Meter(mp)
	var err error
	if t.trips, err = m.Int64Counter(MetricRoundTrips, metric.WithUnit("{call}"),
		metric.WithDescription("Fleet store round trips, by result.")); err != nil {
		return nil, err
	}
	if t.tripDur, err = m.Float64Histogram(MetricRoundTrip, metric.WithUnit(telemetry.UnitSeconds),
		metric.WithDescription("Latency of one fleet store round trip."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)); err != nil {
		return nil, err
	}
	if t.leased, err = m.Int64Counter(MetricLeased, metric.WithUnit("{token}"),
		metric.WithDescription("Tokens leased from the fleet limit (given back tokens are not subtracted).")); err != nil {
		return nil, err
	}
	if t.fallbacks, err = m.Int64Counter(MetricFallbacks, metric.WithUnit("{event}"),
		metric.WithDescription("Times the fleet store failed and the on_store_error mode took over.")); err != nil {
		return nil, err
	}
	if t.degraded, err = m.Int64UpDownCounter(MetricDegraded, metric.WithUnit("{limit}"),
		metric.WithDescription("Fleet limits and breakers running on their on_store_error mode now.")); err != nil {
		return nil, err
	}
	kv := []attribute.KeyValue{AttrConcern.String(concern), AttrName.String(name)}
	t.base = metric.WithAttributeSet(attribute.NewSet(kv...))
	t.ok = metric.WithAttributeSet(attribute.NewSet(append(kv, AttrResult.String("ok"))...))
	t.failed = metric.WithAttributeSet(attribute.NewSet(append(kv, AttrResult.String("error"))...))
	return t, nil
}

// RoundTrip counts one store call.
func (t *Telemetry) RoundTrip(_ string, d time.Duration, err error) {
	if t == nil || t.trips == nil {
		return
	}
	o := t.ok
	if err != nil {
		o = t.failed
	}
	t.trips.Add(context.Background(), 1, o)
	t.tripDur.Record(context.Background(), d.Seconds(), t.base)
}

// Leased counts granted tokens.
func (t *Telemetry) Leased(_ string, n int) {
	if t == nil || t.leased == nil || n <= 0 {
		return
	}
	t.leased.Add(context.Background(), int64(n), t.base)
}

// Fallback counts and logs a failure of the store (err != nil) or its
// recovery (err == nil).
func (t *Telemetry) Fallback(key string, mode OnStoreError, err error) {
	if t == nil {
		return
	}
	fields := watermill.LogFields{"concern": t.concern, "name": t.name, "key": key, "on_store_error": mode.String()}
	if err != nil {
		if t.logger != nil {
			t.logger.Error("levee/fleet: store failing; on_store_error applies", err, fields)
		}
		if t.fallbacks != nil {
			t.fallbacks.Add(context.Background(), 1, metric.WithAttributeSet(attribute.NewSet(
				AttrConcern.String(t.concern), AttrName.String(t.name), AttrMode.String(mode.String()))))
			t.degraded.Add(context.Background(), 1, t.base)
		}
		return
	}
	if t.logger != nil {
		t.logger.Info("levee/fleet: store back; fleet state resumes", fields)
	}
	if t.degraded != nil {
		t.degraded.Add(context.Background(), -1, t.base)
	}
}

// Released takes a limit or breaker closed while degraded out of
// levee.fleet.degraded (it no longer runs on its on_store_error mode; the
// store did not come back, so nothing is logged).
func (t *Telemetry) Released(string) {
	if t != nil && t.degraded != nil {
		t.degraded.Add(context.Background(), -1, t.base)
	}
}

// Inner is the Observer of a Pool inside a limit or breaker that reports
// the store's outages itself: a per-key limit's keys (the limit's own
// Pool sees the same store fail) and a breaker's drain pool (its report
// loop does). It records round trips and leases; its store failures are
// not fallbacks of their own, so levee.fleet.fallbacks, levee.fleet.degraded
// and the log line count limits and breakers, not their Pools.
type Inner struct{ *Telemetry }

// Fallback does nothing: see Inner.
func (Inner) Fallback(string, OnStoreError, error) {}

// Released does nothing: see Inner.
func (Inner) Released(string) {}
