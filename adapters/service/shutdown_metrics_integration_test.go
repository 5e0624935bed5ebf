//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/levee-dev/levee/adapters/internal/kafkatest"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/tracing"
)

// smYAML is the stack of TestShutdownHandBacksAreNotFailures: four handlers
// with tracing, metrics, recover and a dlq, that hold messages in a dlq
// backoff (backoff), a rate-limit wait (limited), a breaker opened by a
// timed-out attempt (tripped), a priority queue behind a running holder
// (queued) and an open batch (batched).
const smYAML = `transport: %s
handlers:
  backoff:
    tracing: {}
    metrics: true
    recover: true
    dlq: {retry: {max_attempts: 5, initial: 10m, max: 10m}}
  limited:
    tracing: {}
    metrics: true
    recover: true
    dlq: {}
    ratelimit: {rate: 0.01/s, burst: 1, max_wait: 10m}
  tripped:
    tracing: {}
    metrics: true
    recover: true
    timeout: 100ms
    dlq: {retry: {max_attempts: 1}}
    breaker: {consecutive_failures: 1, open_for: 10m, max_hold: 10m}
  queued:
    tracing: {}
    metrics: true
    recover: true
    dlq: {}
    priority: {scheduler: shared}
  batched:
    tracing: {}
    metrics: true
    recover: true
    dlq: {}
    batch: {max_size: 100, max_wait: 1m}
schedulers:
  shared: {slots: 1}
`

// smHeld is what each handler holds when the service closes: every one
// of them is handed back to the broker.
var smHeld = map[string]int{"backoff": 2, "limited": 2, "tripped": 2, "queued": 3, "batched": 2}

// TestShutdownHandBacksAreNotFailures stops a service built from YAML,
// over every durable transport (RabbitMQ, NATS JetStream, Redis Streams,
// PostgreSQL, Kafka), while it holds eleven messages: two
// in a dlq backoff, two waiting for a rate-limit token, two behind a
// breaker that a timed-out attempt opened, three at a one-slot priority
// scheduler (one running, two queued) and two in an open batch. Before,
// each of the eleven was counted in
// levee.handler.messages as a transient failure (outcome nacked, class
// transient) and its span had status Error, so every deploy showed a
// burst of failures that never happened: none of them failed, the broker
// redelivers each to the next service. Every metric is checked against
// what the handlers, the dead-letter store and the next service saw. The
// transports run at the same time, each with topics and a consumer group
// of its own.
func TestShutdownHandBacksAreNotFailures(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	// NATS, Redis and PostgreSQL get an ack deadline whose max hold (80%)
	// covers the holds of smYAML (RabbitMQ's is its 30 minute consumer
	// timeout; Kafka has none).
	kafkaGroup := brokertest.Name("sm")
	cases := []struct {
		name, transport string
		// rolling: the next service of the group runs before this one
		// stops, as in a rolling deploy.
		rolling bool
		// settled waits until the transport hands over steadily.
		settled func(t *testing.T)
	}{
		{"amqp", fmt.Sprintf("{kind: amqp, concurrency: 4, amqp: {url: %q}}", brokertest.AMQPURL()), true, nil},
		{"nats", fmt.Sprintf("{kind: nats, concurrency: 4, ack_deadline: 30m, consumer_group: %s, nats: {url: %q}}",
			brokertest.Name("sm"), brokertest.NATSURL()), true, nil},
		{"redis", fmt.Sprintf("{kind: redis, concurrency: 4, ack_deadline: 30m, consumer_group: %s, redis: {addr: %q}}",
			brokertest.Name("sm"), brokertest.RedisAddr()), true, nil},
		// Every held message holds a connection: 11 of them, and the
		// polls of the 10 subscriptions share the rest (the server's 100
		// connections are shared with other tests).
		{"postgres", fmt.Sprintf("{kind: postgres, concurrency: 4, ack_deadline: 30m, postgres: {url: %q, max_conns: 16}}",
			brokertest.PostgresURL()), true, nil},
		// A member joining a Kafka group rebalances it, and the rebalance
		// hands back every message the first service holds, some of them
		// to itself again (docs/TRANSPORTS.md, "Kafka: every subscription
		// of a transport is a member of its one group"): the next service
		// joins after this one's Close, and reads the held messages from
		// the last committed offsets.
		// Each handler and dead-letter monitor (5 each) is a member of
		// the group, and each joining one rebalances it, handing back
		// what the others hold then: publish once the group is stable.
		{"kafka", fmt.Sprintf("{kind: kafka, concurrency: 4, consumer_group: %s, kafka: {brokers: [%q]}}",
			kafkaGroup, cluster.ListenAddrs()[0]), false,
			func(t *testing.T) {
				kafkatest.WaitStable(t, cluster.ListenAddrs(), kafkaGroup, 2*len(smHeld), 30*time.Second)
			}},
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() { t.Run(c.name, func(t *testing.T) { smRun(t, c.transport, c.rolling, c.settled) }) })
	}
	wg.Wait()
}

func smRun(t *testing.T, transport string, rolling bool, settled func(t *testing.T)) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	prefix := brokertest.Name("svc_stop_metrics") + "_"
	yaml := fmt.Sprintf(smYAML, transport)
	svc, err := service.New(context.Background(), parse(t, yaml), config.Deps{MeterProvider: mp, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	svc.WatchDeadLetters = true // the in-memory store: the broker's dead letters, counted
	seen := &svcSeen{inFlight: map[string]int{}, processed: map[string]bool{}}
	svc.Router.AddMiddleware(seen.track)
	svc.Handle("backoff", prefix+"backoff", func(msg *message.Message) error {
		if msg.Metadata.Get("panic") == "1" {
			panic("bad order") // recover: class panic, dead-lettered at once
		}
		return errors.New("downstream down") // transient: a 10 minute backoff
	})
	svc.Handle("limited", prefix+"limited", func(msg *message.Message) error { seen.ok(msg); return nil })
	svc.Handle("tripped", prefix+"tripped", func(msg *message.Message) error {
		<-msg.Context().Done() // the 100ms timeout: exhausted, the breaker opens
		return msg.Context().Err()
	})
	if err := svc.HandleBatch("batched", prefix+"batched", func(context.Context, []*message.Message) error {
		t.Error("the open batch was flushed")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	svc.Handle("queued", prefix+"queued", func(msg *message.Message) error {
		<-msg.Context().Done() // holds the one slot until the shutdown
		return msg.Context().Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	<-svc.Running()
	if settled != nil {
		settled(t)
	}
	var handedBack, sent []string
	pub := func(name string, n int, held bool, meta ...string) {
		for range n {
			m := message.NewMessage(watermill.NewUUID(), []byte(name))
			for i := 0; i+1 < len(meta); i += 2 {
				m.Metadata.Set(meta[i], meta[i+1])
			}
			sent = append(sent, m.UUID)
			if held {
				handedBack = append(handedBack, m.UUID)
			}
			if err := svc.Transport.Publisher.Publish(prefix+name, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	pub("backoff", 1, false, "panic", "1")
	pub("tripped", 1, false)
	svcWait(t, "the panic and the timed-out message dead-lettered", func() bool {
		letters, err := svc.Store.List(context.Background(), dlqops.Filter{})
		return err == nil && len(letters) == 2
	})
	pub("backoff", smHeld["backoff"], true)
	pub("limited", 1, false)
	first := sent[len(sent)-1]
	svcWait(t, "the first limited message acked", func() bool { return seen.count([]string{first}) == 1 && seen.flight("limited") == 0 })
	pub("limited", smHeld["limited"], true)
	pub("tripped", smHeld["tripped"], true)
	pub("queued", smHeld["queued"], true)
	pub("batched", smHeld["batched"], true)
	svcWait(t, "messages held", func() bool {
		for name, n := range smHeld {
			if seen.flight(name) != n {
				return false
			}
		}
		return true
	})
	// The broker's side, a rolling deploy: the next service of the same
	// consumer group runs before this one stops; each held message is
	// redelivered to it, and nothing else is.
	next, err := service.New(context.Background(), parse(t, "transport: "+transport+"\n"), config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Nothing consumes the topics once they are deleted: a Redis
		// member reading a deleted stream sleeps 500 ms after each error
		// (watermill-redisstream), past the transport's Close.
		_ = next.Router.Close()
		_ = next.Transport.DeleteTopics(context.Background(), prefix+"backoff", prefix+"limited", prefix+"tripped", prefix+"queued", prefix+"batched",
			prefix+"backoff.dlq", prefix+"limited.dlq", prefix+"tripped.dlq", prefix+"queued.dlq", prefix+"batched.dlq")
		_ = next.Close()
	}()
	again := &svcSeen{processed: map[string]bool{}}
	for name := range smHeld {
		next.Handle(name, prefix+name, func(msg *message.Message) error { again.ok(msg); return nil })
	}
	runNext := func() {
		go func() { _ = next.Run(ctx) }()
		<-next.Running()
	}
	if rolling {
		runNext()
	}
	before := smPoints(t, reader)
	if err := svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	<-ran
	if !rolling {
		runNext()
	}
	got := smPoints(t, reader)

	// What happened: 1 acked, 2 dead-lettered (panic, exhausted), the 11
	// held handed back; no delivery failed without being dead-lettered.
	// A broker may deliver a handed-back message to this service again
	// while it closes (RabbitMQ requeues a Nack to any consumer of the
	// queue, this one's included until its consumer is cancelled), and
	// that delivery is handed back too: each is one more canceled, so the
	// counts follow the deliveries the handlers got.
	canceled := int64(-3) // the acked and the two dead-lettered
	for name := range smHeld {
		canceled += int64(seen.deliveries(name))
	}
	if canceled < int64(len(handedBack)) {
		t.Errorf("the handlers got %d deliveries to hand back, want at least the %d held", canceled, len(handedBack))
	}
	exact := map[string]int64{
		"levee.handler.messages acked":                   1,
		"levee.handler.messages dead_lettered panic":     1,
		"levee.handler.messages dead_lettered exhausted": 1,
		"levee.handler.messages canceled":                canceled,
		"levee.handler.duration acked":                   1,
		"levee.handler.duration dead_lettered panic":     1,
		"levee.handler.duration dead_lettered exhausted": 1,
		"levee.handler.duration canceled":                canceled,
		"levee.batch.left canceled":                      int64(seen.deliveries("batched")),
		"levee.dlq.dead_letters panic":                   1,
		"levee.dlq.dead_letters exhausted":               1,
		"levee.dlq.monitor.recorded new":                 2,
		"levee.breaker.transitions open":                 1,
		"levee.breaker.wait.duration canceled":           int64(seen.deliveries("tripped") - 1),
		"levee.breaker.paused":                           0,
		"levee.ratelimit.wait.duration":                  1,
		"levee.priority.wait.duration":                   1,
	}
	for k, w := range exact {
		if got[k] != w {
			t.Errorf("%s: got %d, want %d", k, got[k], w)
		}
	}
	for k, v := range got {
		if _, ok := exact[k]; !ok && v != 0 {
			t.Errorf("unexpected %s = %d", k, v)
		}
	}
	for k, w := range map[string]int64{"levee.breaker.paused": 2, "levee.priority.queue.depth": 2, "levee.priority.slots.in_use": 1} {
		if before[k] != w {
			t.Errorf("%s before the shutdown: got %d, want %d", k, before[k], w)
		}
	}
	smSpans(t, sr, int(canceled))
	deadline := time.Now().Add(30 * time.Second)
	for again.count(handedBack) != len(handedBack) {
		if time.Now().After(deadline) {
			t.Fatalf("the next service got %d of the %d handed-back messages in 30 s", again.count(handedBack), len(handedBack))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // anything else would show up now
	again.mu.Lock()
	defer again.mu.Unlock()
	if len(again.processed) != len(handedBack) {
		t.Errorf("the next service got %d messages, want the %d handed back", len(again.processed), len(handedBack))
	}
}

// smSpans: a consumer span per delivery; canceled of them, the
// handed-back ones, without a class or an error status.
func smSpans(t *testing.T, sr *tracetest.SpanRecorder, canceled int) {
	t.Helper()
	outcomes := map[string]int{}
	for _, s := range sr.Ended() {
		if s.SpanKind().String() != "consumer" {
			continue
		}
		var outcome, class string
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case tracing.AttrOutcome:
				outcome = kv.Value.AsString()
			case tracing.AttrErrorClass:
				class = kv.Value.AsString()
			}
		}
		outcomes[outcome]++
		if outcome == tracing.OutcomeCanceled && (class != "" || s.Status().Code == codes.Error) {
			t.Errorf("canceled span %s: class %q, status %v; want neither", s.Name(), class, s.Status())
		}
	}
	// Only the handlers' spans: the dead-letter monitor has no tracing.
	want := map[string]int{tracing.OutcomeAcked: 1, tracing.OutcomeDeadLettered: 2, tracing.OutcomeCanceled: canceled}
	for k, w := range want {
		if outcomes[k] != w {
			t.Errorf("consumer spans with levee.outcome=%s: %d, want %d (all: %v)", k, outcomes[k], w, outcomes)
		}
	}
	if len(outcomes) != len(want) {
		t.Errorf("consumer spans by outcome %v, want %v", outcomes, want)
	}
}

// smPoints flattens a collection: metric name, then the values of the
// attributes outcome, class, to and reason (when present), to a counter's value,
// a histogram's count or the sum of a gauge's points. Gauges of
// configuration are left out.
func smPoints(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	n := map[string]int64{}
	key := func(name string, set attribute.Set) string {
		for _, a := range []attribute.Key{"outcome", "class", "to", "reason"} {
			if v, ok := set.Value(a); ok {
				name += " " + v.String()
			}
		}
		return name
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					n[key(m.Name, p.Attributes)] += p.Value
				}
			case metricdata.Gauge[int64]:
				if m.Name == "levee.priority.slots.limit" || m.Name == "levee.breaker.state" {
					continue
				}
				for _, p := range d.DataPoints {
					n[key(m.Name, p.Attributes)] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					n[key(m.Name, p.Attributes)] += int64(p.Count)
				}
			}
		}
	}
	return n
}
