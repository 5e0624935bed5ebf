package dlq

import (
	"github.com/levee-dev/levee/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Instrument names (docs/TELEMETRY.md, ## dlq).
var (
	metricDeadLetters     = telemetry.Name("dlq", "dead_letters")
	metricRetries         = telemetry.Name("dlq", "retries")
	metricDeferred        = telemetry.Name("dlq", "retries_deferred")
	metricDeferrals       = telemetry.Name("dlq", "deferrals")
	metricPublishFailures = telemetry.Name("dlq", "publish_failures")
	metricAttemptStoreErr = telemetry.Name("dlq", "attempt_store_errors")
)

// attrClass is the attribute key of the error class; attrReason of why a
// dead-lettering failed (levee.dlq.publish_failures).
const (
	attrClass  = attribute.Key("class")
	attrReason = attribute.Key("reason")
)

type instruments struct {
	deadLetters     metric.Int64Counter
	retries         metric.Int64Counter
	deferred        metric.Int64Counter
	deferrals       metric.Int64Counter
	publishFailures metric.Int64Counter
	attemptStoreErr metric.Int64Counter
}

func newInstruments(mp metric.MeterProvider) (instruments, error) {
	m := telemetry.Meter(mp)
	var ins instruments
	var err error
	if ins.deadLetters, err = m.Int64Counter(metricDeadLetters, metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Messages dead-lettered (DLQ publish confirmed), by class.")); err != nil {
		return ins, err
	}
	if ins.retries, err = m.Int64Counter(metricRetries, metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("In-process retries after a backoff wait.")); err != nil {
		return ins, err
	}
	if ins.deferred, err = m.Int64Counter(metricDeferred, metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Retries deferred to a redelivery because the wait exceeded max hold.")); err != nil {
		return ins, err
	}
	if ins.deferrals, err = m.Int64Counter(metricDeferrals, metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Deliveries Nacked without a handler attempt because a layer further in deferred them (breaker, rate limit, priority, dedup, batch); never counted as attempts.")); err != nil {
		return ins, err
	}
	if ins.publishFailures, err = m.Int64Counter(metricPublishFailures, metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Dead-lettering that failed, by reason; the original was Nacked.")); err != nil {
		return ins, err
	}
	if ins.attemptStoreErr, err = m.Int64Counter(metricAttemptStoreErr, metric.WithUnit("{error}"),
		metric.WithDescription("Failed calls to the shared attempt store; the attempt was counted in process.")); err != nil {
		return ins, err
	}
	return ins, nil
}

// handlerAttrs are the precomputed measurement options of one wrapped
// handler.
type handlerAttrs struct {
	base     metric.MeasurementOption
	byClass  map[Class]metric.MeasurementOption
	byReason map[string]metric.MeasurementOption
}

func newHandlerAttrs(handler, topic string) *handlerAttrs {
	a := &handlerAttrs{base: telemetry.Attrs(handler, topic), byClass: map[Class]metric.MeasurementOption{},
		byReason: map[string]metric.MeasurementOption{}}
	for _, c := range []Class{ClassTransient, ClassPermanent, ClassValidation, ClassPanic, ClassExhausted} {
		a.byClass[c] = telemetry.Attrs(handler, topic, attrClass.String(string(c)))
	}
	for _, r := range publishReasons {
		a.byReason[r] = telemetry.Attrs(handler, topic, attrReason.String(r))
	}
	return a
}
