package telemetrytest_test

import (
	"sync"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// instrument is what a package asked a meter for: kind and unit by name
// (and a histogram's explicit bucket boundaries, nil for OTel's default).
type instrument struct {
	kind, unit string
	bounds     []float64
}

// inventory is a MeterProvider that records every instrument created
// through it (and creates no-op ones).
type inventory struct {
	noop.MeterProvider
	mu  sync.Mutex
	got map[string]instrument
}

func (p *inventory) Meter(string, ...metric.MeterOption) metric.Meter { return invMeter{p: p} }

func (p *inventory) add(name, kind, unit string, bounds ...float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got[name] = instrument{kind, unit, bounds}
}

type invMeter struct {
	noop.Meter
	p *inventory
}

func (m invMeter) Int64Counter(n string, o ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	m.p.add(n, "Int64Counter", metric.NewInt64CounterConfig(o...).Unit())
	return m.Meter.Int64Counter(n, o...)
}

func (m invMeter) Int64UpDownCounter(n string, o ...metric.Int64UpDownCounterOption) (metric.Int64UpDownCounter, error) {
	m.p.add(n, "Int64UpDownCounter", metric.NewInt64UpDownCounterConfig(o...).Unit())
	return m.Meter.Int64UpDownCounter(n, o...)
}

func (m invMeter) Int64Histogram(n string, o ...metric.Int64HistogramOption) (metric.Int64Histogram, error) {
	c := metric.NewInt64HistogramConfig(o...)
	m.p.add(n, "Int64Histogram", c.Unit(), c.ExplicitBucketBoundaries()...)
	return m.Meter.Int64Histogram(n, o...)
}

func (m invMeter) Int64Gauge(n string, o ...metric.Int64GaugeOption) (metric.Int64Gauge, error) {
	m.p.add(n, "Int64Gauge", metric.NewInt64GaugeConfig(o...).Unit())
	return m.Meter.Int64Gauge(n, o...)
}

func (m invMeter) Int64ObservableCounter(n string, o ...metric.Int64ObservableCounterOption) (metric.Int64ObservableCounter, error) {
	m.p.add(n, "Int64ObservableCounter", metric.NewInt64ObservableCounterConfig(o...).Unit())
	return m.Meter.Int64ObservableCounter(n, o...)
}

func (m invMeter) Int64ObservableUpDownCounter(n string, o ...metric.Int64ObservableUpDownCounterOption) (metric.Int64ObservableUpDownCounter, error) {
	m.p.add(n, "Int64ObservableUpDownCounter", metric.NewInt64ObservableUpDownCounterConfig(o...).Unit())
	return m.Meter.Int64ObservableUpDownCounter(n, o...)
}

func (m invMeter) Int64ObservableGauge(n string, o ...metric.Int64ObservableGaugeOption) (metric.Int64ObservableGauge, error) {
	m.p.add(n, "Int64ObservableGauge", metric.NewInt64ObservableGaugeConfig(o...).Unit())
	return m.Meter.Int64ObservableGauge(n, o...)
}

func (m invMeter) Float64Counter(n string, o ...metric.Float64CounterOption) (metric.Float64Counter, error) {
	m.p.add(n, "Float64Counter", metric.NewFloat64CounterConfig(o...).Unit())
	return m.Meter.Float64Counter(n, o...)
}

func (m invMeter) Float64UpDownCounter(n string, o ...metric.Float64UpDownCounterOption) (metric.Float64UpDownCounter, error) {
	m.p.add(n, "Float64UpDownCounter", metric.NewFloat64UpDownCounterConfig(o...).Unit())
	return m.Meter.Float64UpDownCounter(n, o...)
}

func (m invMeter) Float64Histogram(n string, o ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	c := metric.NewFloat64HistogramConfig(o...)
	m.p.add(n, "Float64Histogram", c.Unit(), c.ExplicitBucketBoundaries()...)
	return m.Meter.Float64Histogram(n, o...)
}

func (m invMeter) Float64Gauge(n string, o ...metric.Float64GaugeOption) (metric.Float64Gauge, error) {
	m.p.add(n, "Float64Gauge", metric.NewFloat64GaugeConfig(o...).Unit())
	return m.Meter.Float64Gauge(n, o...)
}

func (m invMeter) Float64ObservableCounter(n string, o ...metric.Float64ObservableCounterOption) (metric.Float64ObservableCounter, error) {
	m.p.add(n, "Float64ObservableCounter", metric.NewFloat64ObservableCounterConfig(o...).Unit())
	return m.Meter.Float64ObservableCounter(n, o...)
}

func (m invMeter) Float64ObservableUpDownCounter(n string, o ...metric.Float64ObservableUpDownCounterOption) (metric.Float64ObservableUpDownCounter, error) {
	m.p.add(n, "Float64ObservableUpDownCounter", metric.NewFloat64ObservableUpDownCounterConfig(o...).Unit())
	return m.Meter.Float64ObservableUpDownCounter(n, o...)
}

func (m invMeter) Float64ObservableGauge(n string, o ...metric.Float64ObservableGaugeOption) (metric.Float64ObservableGauge, error) {
	m.p.add(n, "Float64ObservableGauge", metric.NewFloat64ObservableGaugeConfig(o...).Unit())
	return m.Meter.Float64ObservableGauge(n, o...)
}
