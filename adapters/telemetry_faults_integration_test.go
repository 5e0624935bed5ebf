//go:build integration

package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/internal/kafkatest"
	"github.com/levee-dev/levee/breaker"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/middleware"
	"github.com/levee-dev/levee/priority"
	"github.com/levee-dev/levee/ratelimit"
	"github.com/levee-dev/levee/tracing"
)

// tfHealthy is the number of healthy messages of TestTelemetryUnderCombinedFaults.
const tfHealthy = 40

// tfCounts is what the test's own code saw, to compare with the metrics.
type tfCounts struct {
	mu                        sync.Mutex
	acked, nacked, deferred   int // router deliveries by the stack's result
	handlerCalls, failedCalls int // calls of the innermost handler
	rlCalls                   int // passes through the ratelimit slot (a priority slot granted)
	deadLettered, retryHook   int // dlq hooks
	processed                 map[string]bool
}

func (c *tfCounts) add(f func(c *tfCounts)) { c.mu.Lock(); f(c); c.mu.Unlock() }

// tfStack is the canonical stack with every concern's telemetry on one
// meter provider, as docs/TELEMETRY.md sets it up.
func tfStack(t *testing.T, tr *adapters.Transport, mp *sdkmetric.MeterProvider, tp *sdktrace.TracerProvider, c *tfCounts) (*middleware.Stack, *breaker.Breaker) {
	t.Helper()
	tracer, err := tracing.New(tracing.WithTracerProvider(tp), tracing.WithSystem(tr.Capabilities.System))
	require.NoError(t, err)
	metrics, err := tracing.NewMetrics(tracing.WithMeterProvider(mp))
	require.NoError(t, err)
	// Every retry waits 2.5 s, past the dlq's 2 s max hold: each failed
	// attempt is Nacked (a deferred retry). NATS and PostgreSQL redeliver
	// after the delay (native delay); RabbitMQ, Redis and Kafka have none
	// (docs/TRANSPORTS.md): the redelivery comes early (at once; Kafka
	// after 100 ms), waits 2 s and is Nacked again.
	d, err := dlq.New(tr.Publisher, dlq.WithMeterProvider(mp), dlq.WithMaxHold(2*time.Second),
		dlq.WithBackoff(dlq.Backoff{Initial: 2500 * time.Millisecond, Max: 2500 * time.Millisecond, Multiplier: 1, MaxAttempts: 3}),
		dlq.WithJitter(func() float64 { return 1 }),
		dlq.WithOnRetry(func(dlq.RetryInfo) { c.add(func(c *tfCounts) { c.retryHook++ }) }),
		dlq.WithOnDeadLetter(func(dlq.DeadLetterInfo) { c.add(func(c *tfCounts) { c.deadLettered++ }) }))
	require.NoError(t, err)
	b, err := breaker.New(breaker.WithName("pay"), breaker.WithOpenFor(time.Second), breaker.WithMaxHold(700*time.Millisecond),
		breaker.WithDrain(2*time.Second, 0.2, 1), breaker.WithDrainRate(40), breaker.WithMeterProvider(mp))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	s, err := priority.NewScheduler(priority.WithName("gw"), priority.WithSlots(2), priority.WithMeterProvider(mp))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	l, err := ratelimit.New(ratelimit.WithName("rl"), ratelimit.WithRate(100), ratelimit.WithBurst(2), ratelimit.WithMeterProvider(mp))
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	countRL := func(next message.HandlerFunc) message.HandlerFunc {
		h := l.Middleware(next)
		return func(msg *message.Message) ([]*message.Message, error) {
			c.add(func(c *tfCounts) { c.rlCalls++ })
			return h(msg)
		}
	}
	dd, err := dedup.New(dedup.WithMeterProvider(mp))
	require.NoError(t, err)
	return middleware.NewStack().Tracing(tracer.Middleware).Metrics(metrics.Middleware).
		Recover(middleware.Recover).DLQ(d.Middleware).Dedup(dd.Middleware).Breaker(b.Middleware).
		Priority(s.Middleware).RateLimit(countRL), b
}

// TestTelemetryUnderCombinedFaults runs a downstream outage (the breaker
// opens, waits past its max hold, probes, closes and drains), a poison
// message (dlq retries, then a dead letter), priority queueing behind two
// slots, rate-limit waits and dedup of duplicates together over every
// durable transport (RabbitMQ, NATS JetStream, Redis Streams, PostgreSQL,
// Kafka), and checks that every documented instrument counts what the
// test's own handler counted: no backpressure is a failure, a retry or a
// dead letter, every gauge is back to 0, durations are in seconds and
// labels stay bounded. The transports run at the same time, each with a
// transport, consumer group and topics of its own.
func TestTelemetryUnderCombinedFaults(t *testing.T) {
	var cases []transportCase
	for _, tc := range transportCases(t) {
		if tc.name != "gochannel" {
			cases = append(cases, tc)
		}
	}
	runConcurrently(t, caseNames(cases), func(t *testing.T, i int) { tfRun(t, cases[i]) })
}

func tfRun(t *testing.T, tc transportCase) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	group := tc.group
	if group != "" {
		group = "tf-" + watermill.NewShortUUID()
	}
	opts := []adapters.Option{adapters.WithConcurrency(8)}
	if tc.name == "kafka" {
		opts = append(opts, adapters.WithKafkaPartitions(8))
	}
	tr := newTransport(t, tc, group, opts...)
	topic := scenarioTopic("tf")
	// After the router stopped (cleanups run last first), before tr.Close.
	t.Cleanup(func() { _ = tr.DeleteTopics(context.Background(), topic, dlq.DefaultTopic(topic)) })
	c := &tfCounts{processed: map[string]bool{}}
	stack, b := tfStack(t, tr, mp, tp, c)

	var outageEnd atomic.Int64
	inner := scenarioHandler(func(msg *message.Message) error {
		if msg.Metadata.Get("panic") == "1" {
			c.add(func(c *tfCounts) { c.handlerCalls++; c.failedCalls++ })
			panic("bad order")
		}
		failed := msg.Metadata.Get("poison") == "1" || time.Now().UnixNano() < outageEnd.Load()
		c.add(func(c *tfCounts) {
			c.handlerCalls++
			if failed {
				c.failedCalls++
			} else {
				c.processed[msg.UUID] = true
			}
		})
		if failed {
			return errors.New("downstream unavailable")
		}
		return nil
	})
	h := stack.Middleware(inner)
	router := scenarioRouter(t)
	router.AddMiddleware(tr.Middleware)
	router.AddConsumerHandler("tf", topic, tr.Subscriber, func(msg *message.Message) error {
		_, err := h(msg)
		c.add(func(c *tfCounts) {
			switch {
			case err == nil:
				c.acked++
			case levee.IsDeferral(err):
				c.deferred++
			default:
				c.nacked++
			}
		})
		return err
	})
	dead := newScenarioSet()
	scenarioCollectDeadLetters(router, tr.Subscriber, dlq.DefaultTopic(topic), dead)
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = router.Run(ctx) }()
	t.Cleanup(func() { stop(); <-stopped })
	<-router.Running()
	if tc.name == "kafka" {
		// Both subscriptions (topic and dead letters) are members of the
		// group, and the second to join rebalances it, handing back what
		// the first holds then, up to a heartbeat (3 s) later
		// (docs/TRANSPORTS.md, "Kafka: every subscription of a transport
		// is a member of its one group"): publish once it is stable.
		kafkatest.WaitStable(t, tc.brokers, group, 2, scenarioTimeout)
	}

	outageEnd.Store(time.Now().Add(3 * time.Second).UnixNano())
	prios := []string{"9", "0", "5", "12345", "-7", "high", ""}
	for i := range tfHealthy + 1 {
		m := message.NewMessage(watermill.NewUUID(), scenarioPayload(i))
		switch i {
		case tfHealthy / 2:
			m.Metadata.Set("poison", "1")
		case tfHealthy / 4:
			m.Metadata.Set("panic", "1")
		}
		m.Metadata.Set(levee.KeyPriority, prios[i%len(prios)])
		m.Metadata.Set(levee.KeyDedupID, fmt.Sprint("order-", i))
		require.NoError(t, tr.Publisher.Publish(topic, m))
	}
	scenarioWait(t, "every healthy message processed and the poison dead-lettered", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.processed) == tfHealthy-1 && dead.len() == 2
	})
	// Five duplicates of processed orders (new UUIDs, the same identity):
	// acked without a handler call, counted in levee.dedup.duplicates.
	c.mu.Lock()
	calls, acked := c.handlerCalls, c.acked
	c.mu.Unlock()
	for i := range 5 {
		m := message.NewMessage(watermill.NewUUID(), scenarioPayload(i))
		m.Metadata.Set(levee.KeyDedupID, fmt.Sprint("order-", i))
		require.NoError(t, tr.Publisher.Publish(topic, m))
	}
	scenarioWait(t, "the duplicates acked", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		// At least: an original whose handler had returned when acked
		// was read may reach the router's count only now.
		return c.acked >= acked+5
	})
	time.Sleep(3 * time.Second) // the drain ends; a late redelivery shows up
	tfCheck(t, reader, sr, c)
	require.Equal(t, calls, c.handlerCalls, "handler calls for duplicates")
	require.EqualValues(t, 5, tfSum(t, tfMetrics(t, reader), "levee.dedup.duplicates"), "levee.dedup.duplicates")

	// Messages waiting behind a forced-open breaker when the router
	// stops: their waits end (canceled), none stays paused.
	b.ForceOpen()
	for i := range 8 {
		require.NoError(t, tr.Publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), scenarioPayload(i))))
	}
	scenarioWait(t, "messages paused behind the forced-open breaker", func() bool {
		return tfSum(t, tfMetrics(t, reader), "levee.breaker.paused") > 0
	})
	stop()
	<-stopped
	require.Zero(t, tfSum(t, tfMetrics(t, reader), "levee.breaker.paused"), "levee.breaker.paused after the router stopped")
}

// tfMetrics collects reader's metrics by name.
func tfMetrics(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// tfSum adds up an Int64 sum's points whose attributes match where.
func tfSum(t *testing.T, ms map[string]metricdata.Metrics, name string, where ...attribute.KeyValue) int64 {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		return 0
	}
	var n int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if tfMatch(dp.Attributes, where) {
			n += dp.Value
		}
	}
	return n
}

func tfMatch(set attribute.Set, where []attribute.KeyValue) bool {
	for _, kv := range where {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// tfHist returns the count and the largest value of a float histogram.
func tfHist(t *testing.T, ms map[string]metricdata.Metrics, name string) (count uint64, max float64) {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		return 0, 0
	}
	require.Equal(t, "s", m.Unit, "%s unit", name)
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		count += dp.Count
		if v, ok := dp.Max.Value(); ok && v > max {
			max = v
		}
	}
	return count, max
}

// tfKeys returns the attribute keys of every point of the named metric.
func tfKeys(ms map[string]metricdata.Metrics, name string) map[string]bool {
	keys := map[string]bool{}
	add := func(s attribute.Set) {
		for _, kv := range s.ToSlice() {
			keys[string(kv.Key)] = true
		}
	}
	switch d := ms[name].Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			add(dp.Attributes)
		}
	}
	return keys
}

func tfCheck(t *testing.T, r *sdkmetric.ManualReader, sr *tracetest.SpanRecorder, c *tfCounts) {
	t.Helper()
	ms := tfMetrics(t, r)
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Logf("router: acked %d, nacked %d, deferred %d; handler calls %d (failed %d); ratelimit passes %d; dlq retries (hook) %d, dead letters %d",
		c.acked, c.nacked, c.deferred, c.handlerCalls, c.failedCalls, c.rlCalls, c.retryHook, c.deadLettered)
	t.Logf("dlq: deferrals %d, retries_deferred %d, retries %d", tfSum(t, ms, "levee.dlq.deferrals"),
		tfSum(t, ms, "levee.dlq.retries_deferred"), tfSum(t, ms, "levee.dlq.retries"))
	require.Positive(t, c.failedCalls, "the outage never reached the handler")

	out := func(o string) int64 {
		return tfSum(t, ms, "levee.handler.messages", attribute.String("outcome", o))
	}
	require.EqualValues(t, c.acked-c.deadLettered, out("acked"), "levee.handler.messages{acked}")
	require.EqualValues(t, c.deadLettered, out("dead_lettered"), "levee.handler.messages{dead_lettered}")
	require.EqualValues(t, c.nacked, out("nacked"), "levee.handler.messages{nacked}")
	require.EqualValues(t, c.deferred, out("deferred"), "levee.handler.messages{deferred}")
	n, _ := tfHist(t, ms, "levee.handler.duration")
	require.EqualValues(t, c.acked+c.nacked+c.deferred, n, "levee.handler.duration count")

	require.Equal(t, 2, c.deadLettered, "dead letters")
	for _, class := range []string{"exhausted", "panic"} {
		require.EqualValues(t, 1, tfSum(t, ms, "levee.dlq.dead_letters", attribute.String("class", class)), "levee.dlq.dead_letters{%s}", class)
		require.EqualValues(t, 1, tfSum(t, ms, "levee.handler.messages", attribute.String("outcome", "dead_lettered"), attribute.String("class", class)),
			"levee.handler.messages{dead_lettered,%s}", class)
	}
	retries := tfSum(t, ms, "levee.dlq.retries")
	require.EqualValues(t, c.retryHook, retries, "levee.dlq.retries against OnRetry")
	// A failed attempt is retried in place, Nacked for a deferred retry
	// (outcome nacked) or dead-lettered; a delivery without an attempt is
	// a deferral. Backpressure is never a failure.
	require.EqualValues(t, c.failedCalls, retries+int64(c.nacked+c.deadLettered),
		"failed handler calls = dlq retries + nacked deliveries + dead letters")
	require.EqualValues(t, c.nacked+c.deferred, tfSum(t, ms, "levee.dlq.retries_deferred")+tfSum(t, ms, "levee.dlq.deferrals"),
		"Nacked deliveries = deferred retries + deferrals")

	require.Zero(t, tfSum(t, ms, "levee.breaker.paused"), "levee.breaker.paused after the run")
	tfGaugesZero(t, ms)
	pc, _ := tfHist(t, ms, "levee.priority.wait.duration")
	require.EqualValues(t, c.rlCalls, pc, "levee.priority.wait.duration count = slots granted")
	rc, rmax := tfHist(t, ms, "levee.ratelimit.wait.duration")
	require.EqualValues(t, c.rlCalls, int64(rc)+tfSum(t, ms, "levee.ratelimit.rejected"), "ratelimit waits + rejections = passes")
	require.Less(t, rmax, 5.0, "a rate-limit wait of %vs at 100/s: not seconds", rmax)
	bc, bmax := tfHist(t, ms, "levee.breaker.wait.duration")
	require.Less(t, bmax, 5.0, "a breaker wait of %vs under a 0.7s max hold: not seconds", bmax)
	tfSpans(t, sr, c, bc)
	tfLabels(t, ms)
}

// tfGaugesZero: no slot, queued message or paused message is left.
func tfGaugesZero(t *testing.T, ms map[string]metricdata.Metrics) {
	t.Helper()
	for _, name := range []string{"levee.priority.queue.depth", "levee.priority.slots.in_use", "levee.breaker.state"} {
		m, ok := ms[name]
		require.True(t, ok, "%s not reported", name)
		for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
			require.Zero(t, dp.Value, "%s %v after the run", name, dp.Attributes.ToSlice())
		}
	}
	for name, want := range map[string]float64{"levee.breaker.drain.progress": 1, "levee.breaker.drain.rate": 0} {
		for _, dp := range ms[name].Data.(metricdata.Gauge[float64]).DataPoints {
			require.Equal(t, want, dp.Value, "%s after the drain", name)
		}
	}
}

// tfSpans: one consumer span per delivery with the router's outcome, no
// error status on a deferral, one breaker wait.done event per breaker wait.
func tfSpans(t *testing.T, sr *tracetest.SpanRecorder, c *tfCounts, breakerWaits uint64) {
	t.Helper()
	outcomes := map[string]int{}
	var waitDone uint64
	for _, s := range sr.Ended() {
		var o string
		for _, kv := range s.Attributes() {
			if kv.Key == tracing.AttrOutcome {
				o = kv.Value.AsString()
			}
		}
		outcomes[o]++
		if o == tracing.OutcomeDeferred && s.Status().Code != 0 && s.Status().Code.String() == "Error" {
			t.Errorf("deferred span %s has status Error", s.Name())
		}
		for _, e := range s.Events() {
			if e.Name == tracing.EventBreakerWaitDone {
				waitDone++
			}
		}
	}
	want := map[string]int{"acked": c.acked - c.deadLettered, "dead_lettered": c.deadLettered, "nacked": c.nacked, "deferred": c.deferred}
	for k, v := range want {
		if v == 0 {
			delete(want, k)
		}
	}
	require.Equal(t, want, outcomes, "consumer spans by levee.outcome")
	require.Equal(t, breakerWaits, waitDone, "levee.breaker.wait.duration count against levee.breaker.wait.done events")
}

// tfLabels: each instrument carries the documented attribute keys, and the
// values a producer controls (levee_priority) stay in the documented set.
func tfLabels(t *testing.T, ms map[string]metricdata.Metrics) {
	t.Helper()
	want := map[string][]string{
		"levee.handler.messages":            {"handler", "topic", "outcome", "class"},
		"levee.dlq.dead_letters":            {"handler", "topic", "class"},
		"levee.breaker.paused":              {"breaker", "handler", "topic"},
		"levee.breaker.wait.duration":       {"breaker", "handler", "topic", "outcome"},
		"levee.priority.wait.duration":      {"handler", "topic", "scheduler", "priority"},
		"levee.priority.queue.depth":        {"scheduler", "priority"},
		"levee.ratelimit.wait.duration":     {"handler", "topic", "limiter"},
		"levee.breaker.transitions":         {"breaker", "from", "to"},
		"levee.priority.invalid":            {"handler", "topic", "scheduler"},
		"levee.breaker.drain.wait.duration": {"breaker", "handler", "topic"},
	}
	for name, keys := range want {
		got := tfKeys(ms, name)
		var wantSet = map[string]bool{}
		for _, k := range keys {
			wantSet[k] = true
		}
		require.Equal(t, wantSet, got, "%s attribute keys", name)
	}
	m := ms["levee.priority.wait.duration"].Data.(metricdata.Histogram[float64])
	for _, dp := range m.DataPoints {
		v, _ := dp.Attributes.Value("priority")
		if p, err := strconv.Atoi(v.String()); err != nil || p < 0 || p > 9 {
			t.Errorf("levee.priority.wait.duration priority=%s: outside 0..9", v.String())
		}
	}
}
