package dlqops

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Monitor consumes DLQ topics and records every dead letter in a Store. Add
// Handle to a router as a consumer handler for each DLQ topic:
//
//	router.AddConsumerHandler("dlq-monitor-orders", "orders.dlq", sub, mon.Handle)
//
// It sits outside the canonical middleware order: it is a handler of its
// own, on the DLQ topics. It is idempotent on redelivery (the record ID
// hashes the consumer, the UUID and the content, see Record.ID), so two
// handlers dead-lettering one message give two letters; it records letters
// with missing or garbage Levee keys under UnknownGroup, bounds what it
// records (BoundRecord), and returns an error (the router Nacks, nothing is
// lost) when the store fails or does not answer within the store timeout
// (WithStoreTimeout): a stalled store never hangs a consumer or its
// shutdown. A Monitor is safe for concurrent use.
type Monitor struct {
	store   Store
	gc      *groupCommit // nil when group commit is off
	cfg     config
	ins     monitorInstruments
	recNew  metric.MeasurementOption
	recDup  metric.MeasurementOption
	storeKO metric.MeasurementOption
}

// DefaultMonitorRetryAfter is the redelivery delay the Monitor asks for
// when the store fails.
const DefaultMonitorRetryAfter = time.Second

// WithMonitorRetryAfter sets the delay NewMonitor's store error asks the
// transport to wait before redelivering (its RetryAfter). Default 1s; zero
// means a plain Nack; negative is invalid.
func WithMonitorRetryAfter(d time.Duration) Option {
	return option{"WithMonitorRetryAfter", forMonitor, func(c *config) { c.retryAfter = d }}
}

// DefaultMonitorBatchRows bounds one group commit of Monitor.Handle.
const DefaultMonitorBatchRows = 500

// MonitorBatchBytes bounds the letters of one group commit of
// Monitor.Handle by size: a batch takes queued letters while their
// payloads, metadata and errors come to at most 1 MiB, and always at least
// one. A batch of large letters (ten 10 MB payloads) would outlast the
// store timeout; every letter of it would be Nacked, and redelivered to
// form the same batch again, so the DLQ would never drain.
const MonitorBatchBytes = 1 << 20

// WithMonitorBatchRows sets the group commit of NewMonitor's Handle:
// concurrent Handle calls (a transport consuming with concurrency > 1)
// share one Store.Add of up to n letters (and MonitorBatchBytes), which for PostgreSQL is one
// multi-row INSERT. No call waits for a batch to fill: the first flushes
// at once and the calls arriving during that insert form the next batch,
// so with one message in flight it is a single-row insert. Each call still
// returns only after its own letter is stored. Default 500; 1 turns group
// commit off; below 1 is invalid.
func WithMonitorBatchRows(n int) Option {
	return option{"WithMonitorBatchRows", forMonitor, func(c *config) { c.batchRows = n }}
}

// NewMonitor returns a Monitor recording into store. It takes WithClock,
// WithLogger, WithMeterProvider, WithStoreTimeout, WithMonitorRetryAfter
// and WithMonitorBatchRows. It returns an error wrapping ErrInvalidConfig
// for a nil store, a negative retry-after, a store timeout that is not
// positive, batch rows below 1 or an option it does not take.
func NewMonitor(store Store, opts ...Option) (*Monitor, error) {
	c := newConfig(forMonitor, opts)
	switch {
	case c.misplaced != nil:
		return nil, c.misplaced
	case store == nil:
		return nil, fmt.Errorf("%w: monitor without a store", ErrInvalidConfig)
	case c.retryAfter < 0:
		return nil, fmt.Errorf("%w: monitor retry_after %s is negative", ErrInvalidConfig, c.retryAfter)
	case c.storeTimeout <= 0:
		return nil, fmt.Errorf("%w: monitor store timeout %s must be positive", ErrInvalidConfig, c.storeTimeout)
	case c.batchRows < 1:
		return nil, fmt.Errorf("%w: monitor batch rows %d must be at least 1", ErrInvalidConfig, c.batchRows)
	}
	ins, err := newMonitorInstruments(c.mp)
	if err != nil {
		return nil, err
	}
	m := &Monitor{
		store: store, cfg: c, ins: ins,
		recNew:  metric.WithAttributeSet(attribute.NewSet(attrOutcome.String("new"))),
		recDup:  metric.WithAttributeSet(attribute.NewSet(attrOutcome.String("duplicate"))),
		storeKO: metric.WithAttributeSet(attribute.NewSet()),
	}
	if c.batchRows > 1 {
		m.gc = &groupCommit{store: store, maxRows: c.batchRows, timeout: c.storeTimeout, observe: m.observe}
	}
	return m, nil
}

// Handle records one dead letter. Use it as a Watermill
// NoPublishHandlerFunc on a DLQ topic. The DLQ topic is the subscribed
// topic from the message context, else the letter's dlq.KeyDLQTopic. It returns
// nil once the letter is durably stored (or was already), and a
// *MonitorStoreError (wrapping ErrStore) when the store fails or the store
// timeout passes, so the message is Nacked and redelivered. It returns
// within the store timeout, and as soon as the message context ends while
// the letter waits for a group commit.
func (m *Monitor) Handle(msg *message.Message) error {
	topic := message.SubscribeTopicFromCtx(msg.Context())
	if topic == "" {
		topic = cleanName(msg.Metadata.Get(dlq.KeyDLQTopic))
	}
	if m.gc == nil {
		return m.Record(msg.Context(), topic, msg)
	}
	rec := NewRecord(msg, topic, m.cfg.now())
	queued, err := m.gc.submit(msg.Context(), rec)
	if err != nil {
		if queued {
			// it never reached an Add, so no batch counted it
			m.observe(msg.Context(), []Record{rec}, 0, err)
		}
		return &MonitorStoreError{Delay: m.cfg.retryAfter, Err: err}
	}
	return nil
}

// Record decodes msgs consumed from dlqTopic and stores them in one Add
// (one batched insert for the PostgreSQL store). It returns nil once all
// are stored and a *MonitorStoreError when the store fails or the store
// timeout passes (none of msgs may be acked then).
func (m *Monitor) Record(ctx context.Context, dlqTopic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.storeTimeout)
	defer cancel()
	now := m.cfg.now()
	letters := make([]Record, len(msgs))
	for i, msg := range msgs {
		letters[i] = NewRecord(msg, dlqTopic, now)
	}
	n, err := m.store.Add(ctx, letters...)
	m.observe(ctx, letters, n, err)
	if err != nil {
		return &MonitorStoreError{Delay: m.cfg.retryAfter, Err: err}
	}
	return nil
}

// observe counts and logs one Add.
func (m *Monitor) observe(ctx context.Context, recs []Record, added int, err error) {
	if err != nil {
		m.ins.storeErrors.Add(ctx, int64(len(recs)), m.storeKO)
		m.cfg.logger.Error("levee dlq monitor: store failed, dead letters Nacked", err,
			watermill.LogFields{"dlq_topic": recs[0].DLQTopic, "count": len(recs), "first_id": recs[0].ID})
		return
	}
	if added > 0 {
		m.ins.recorded.Add(ctx, int64(added), m.recNew)
	}
	if d := len(recs) - added; d > 0 {
		m.ins.recorded.Add(ctx, int64(d), m.recDup)
	}
	m.cfg.logger.Debug("levee dlq monitor: recorded", watermill.LogFields{
		"dlq_topic": recs[0].DLQTopic, "count": len(recs), "new": added, "first_id": recs[0].ID, "group": recs[0].Fingerprint})
}

// MonitorStoreError is returned by Monitor.Handle when the store failed: the
// dead letter is Nacked and should be redelivered after Delay. It wraps
// ErrStore and Err.
type MonitorStoreError struct {
	Delay time.Duration // the redelivery delay asked for
	Err   error         // the store's error
}

// Error describes the failure.
func (e *MonitorStoreError) Error() string {
	return fmt.Sprintf("levee/dlqops: monitor could not record dead letter, Nacked: %v", e.Err)
}

// RetryAfter returns the redelivery delay asked for.
func (e *MonitorStoreError) RetryAfter() time.Duration { return e.Delay }

// Unwrap returns ErrStore and the store's error.
func (e *MonitorStoreError) Unwrap() []error { return []error{ErrStore, e.Err} }

// attrOutcome is the outcome attribute key of the operations instruments.
const attrOutcome = attribute.Key("outcome")

type monitorInstruments struct {
	recorded    metric.Int64Counter
	storeErrors metric.Int64Counter
}

func newMonitorInstruments(mp metric.MeterProvider) (monitorInstruments, error) {
	m := telemetry.Meter(mp)
	var ins monitorInstruments
	var err error
	if ins.recorded, err = m.Int64Counter(telemetry.Name("dlq", "monitor.recorded"), metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Dead letters the monitor stored (outcome new) or found already stored (outcome duplicate).")); err != nil {
		return ins, err
	}
	if ins.storeErrors, err = m.Int64Counter(telemetry.Name("dlq", "monitor.store_errors"), metric.WithUnit(telemetry.UnitMessages),
		metric.WithDescription("Dead letters Nacked by the monitor because the store failed.")); err != nil {
		return ins, err
	}
	return ins, nil
}
