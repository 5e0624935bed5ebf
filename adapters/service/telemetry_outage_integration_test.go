//go:build integration

package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/internal/kafkatest"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/adapters/service"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/internal/brokertest"
	"github.com/levee-dev/levee/tracing"
)

// toYAML is the stack of TestTelemetryOfAServiceUnderStoreOutages: every
// per-message concern on one handler, its fleet limit and its dedup
// store each behind a proxy the test stalls.
const toYAML = `transport: %s
fleet: {store: "redis://%s/0", prefix: %q}
handlers:
  pay:
    tracing: {}
    metrics: true
    recover: true
    timeout: 300ms
    dlq: {retry: {max_attempts: 2, initial: 20ms, max: 20ms}, max_hold: 400ms}
    dedup: {store: shared, key: {metadata: order_id}, store_timeout: 200ms, busy_retry: 100ms}
    breaker:
      consecutive_failures: 5
      open_for: 500ms
      max_hold: 300ms
      drain: {window: 1s, start: 20%%, rate: 200/s}
    priority: {scheduler: shared}
    ratelimit: {rate: 300/s, burst: 5}
    fleet: {store_timeout: 200ms, ratelimit: {rate: 400/s}}
schedulers:
  shared: {slots: 4}
`

// toResults counts the results of the deliveries as the router saw them
// (a router middleware inside the transport's, outside the stack).
type toResults struct {
	mu                                   sync.Mutex
	ok, deferred, canceled, failed, call int
	effects                              map[string]int // order_id -> successful handler calls
}

func (r *toResults) track(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if message.HandlerNameFromCtx(msg.Context()) != "pay" {
			return out, err // the dead-letter monitor
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case err == nil:
			r.ok++
		case levee.IsDeferral(err):
			r.deferred++
		case errors.Is(err, context.Canceled):
			r.canceled++
		default:
			r.failed++
		}
		return out, err
	}
}

func (r *toResults) get(f func(r *toResults) int) int { r.mu.Lock(); defer r.mu.Unlock(); return f(r) }

// TestTelemetryOfAServiceUnderStoreOutages runs a service built from a
// levee.yaml with every per-message concern (tracing, metrics, recover,
// timeout, dlq, dedup on Redis, a fleet rate limit on Redis, a breaker
// with a drain, priority, a rate limit) over every durable transport,
// through a downstream outage (the breaker opens and drains), poison
// messages, panics, handler overruns past the timeout, duplicates, and a
// stall of the dedup store and of the fleet store. Each metric is checked
// against what the router saw of each delivery and what the dead-letter
// store holds: one count per delivery in the outcome it had, no deferral
// counted as a failure, histogram counts equal to the counters, gauges
// back to 0, one consumer span per delivery with the same outcome.
func TestTelemetryOfAServiceUnderStoreOutages(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	kafkaGroup := brokertest.Name("to")
	cases := []struct {
		name, transport string
		settled         func(t *testing.T)
	}{
		{"amqp", fmt.Sprintf("{kind: amqp, concurrency: 8, amqp: {url: %q}}", brokertest.AMQPURL()), nil},
		{"nats", fmt.Sprintf("{kind: nats, concurrency: 8, ack_deadline: 30s, consumer_group: %s, nats: {url: %q}}",
			brokertest.Name("to"), brokertest.NATSURL()), nil},
		{"redis", fmt.Sprintf("{kind: redis, concurrency: 8, ack_deadline: 30s, consumer_group: %s, redis: {addr: %q}}",
			brokertest.Name("to"), brokertest.RedisAddr()), nil},
		{"postgres", fmt.Sprintf("{kind: postgres, concurrency: 8, ack_deadline: 30s, postgres: {url: %q, max_conns: 16}}",
			brokertest.PostgresURL()), nil},
		{"kafka", fmt.Sprintf("{kind: kafka, concurrency: 8, consumer_group: %s, kafka: {brokers: [%q]}}",
			kafkaGroup, cluster.ListenAddrs()[0]),
			func(t *testing.T) { kafkatest.WaitStable(t, cluster.ListenAddrs(), kafkaGroup, 2, 30*time.Second) }},
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() { t.Run(c.name, func(t *testing.T) { toRun(t, c.transport, c.settled) }) })
	}
	wg.Wait()
}

// toMessages are what toRun publishes: kind -> count.
var toMessages = map[string]int{"ok": 60, "poison": 3, "panic": 2, "slow": 2, "dup": 5}

func toRun(t *testing.T, transport string, settled func(t *testing.T)) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	fleetProxy := brokertest.NewStallProxy(t, brokertest.RedisAddr())
	dedupProxy := brokertest.NewStallProxy(t, brokertest.RedisAddr())
	rc := redis.NewClient(&redis.Options{Addr: dedupProxy.Addr(), MaxRetries: -1})
	defer func() { _ = rc.Close() }()
	ds, err := redisdedup.New(rc, brokertest.Name("to_dedup")+":")
	if err != nil {
		t.Fatal(err)
	}
	topic := brokertest.Name("svc_tel_outage")
	y := fmt.Sprintf(toYAML, transport, fleetProxy.Addr(), brokertest.Name("to_fleet"))
	svc, err := service.New(context.Background(), parse(t, y), config.Deps{MeterProvider: mp, TracerProvider: tp, DedupStore: ds})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = svc.Router.Close()
		_ = svc.Transport.DeleteTopics(context.Background(), topic, dlq.DefaultTopic(topic))
		_ = svc.Close()
	}()
	svc.WatchDeadLetters = true
	res := &toResults{effects: map[string]int{}}
	svc.Router.AddMiddleware(res.track)
	var outageEnd atomic.Int64
	svc.Handle("pay", topic, func(msg *message.Message) error {
		res.mu.Lock()
		res.call++
		res.mu.Unlock()
		switch msg.Metadata.Get("kind") {
		case "poison":
			return dlq.Permanent(errors.New("bad order"))
		case "panic":
			panic("bad order")
		case "slow":
			<-msg.Context().Done()
			return msg.Context().Err()
		}
		if time.Now().UnixNano() < outageEnd.Load() {
			return errors.New("downstream down")
		}
		res.mu.Lock()
		res.effects[msg.Metadata.Get("order_id")]++
		res.mu.Unlock()
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	<-svc.Running()
	if settled != nil {
		settled(t)
	}
	rerun := toDrive(t, svc, reader, topic, res, &outageEnd, fleetProxy, dedupProxy)
	toCheck(t, svc, reader, sr, res, rerun)
	cancel()
	<-ran
}

// toDrive publishes toMessages in three phases and waits until each
// message had its end (the ok ones and duplicates their effect, the
// others a dead letter): a downstream outage with the poison, panicking
// and slow messages; a stall of the dedup store; a stall of the fleet
// store. It returns the duplicates whose original was dead-lettered (the
// handler runs for them).
func toDrive(t *testing.T, svc *service.Service, reader *sdkmetric.ManualReader, topic string, res *toResults,
	outageEnd *atomic.Int64, fleetProxy, dedupProxy *brokertest.StallProxy) (rerun int) {
	pub := func(kind string, id int) {
		m := message.NewMessage(watermill.NewUUID(), []byte(kind))
		m.Metadata.Set("kind", kind)
		m.Metadata.Set("order_id", fmt.Sprintf("o%d", id))
		if err := svc.Transport.Publisher.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	third := toMessages["ok"] / 3
	outageEnd.Store(time.Now().Add(1500 * time.Millisecond).UnixNano())
	for i := range third {
		pub("ok", i)
	}
	for kind, base := range map[string]int{"poison": 1000, "panic": 2000, "slow": 3000} {
		for i := range toMessages[kind] {
			pub(kind, base+i)
		}
	}
	toSettle(t, svc, res, third)
	stalled := func(p *brokertest.StallProxy, from int, metric string) {
		p.SetStall(true)
		for i := from; i < from+third; i++ {
			pub("ok", i)
		}
		svcWait(t, metric+" counted", func() bool { return toSum(smPoints(t, reader), metric) > 0 })
		p.SetStall(false)
		toSettle(t, svc, res, from+third)
	}
	stalled(dedupProxy, third, "levee.dedup.store.errors")
	stalled(fleetProxy, 2*third, "levee.fleet.fallbacks")
	letters, err := svc.Store.List(context.Background(), dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	lettered := map[string]bool{}
	for _, r := range letters {
		lettered[r.Metadata["order_id"]] = true
	}
	before := res.get(func(r *toResults) int { return r.ok })
	for i := range toMessages["dup"] {
		if lettered[fmt.Sprintf("o%d", i)] {
			rerun++
		}
		pub("ok", i) // duplicates of done orders
	}
	svcWait(t, "the duplicates acked", func() bool { return res.get(func(r *toResults) int { return r.ok }) >= before+toMessages["dup"] })
	time.Sleep(time.Second) // anything still on its way shows up now
	return rerun
}

// toSettle waits until the ok messages o0 to o<n-1> had their effect or
// a dead letter, and the others their dead letter.
func toSettle(t *testing.T, svc *service.Service, res *toResults, n int) {
	t.Helper()
	letters := toMessages["poison"] + toMessages["panic"] + toMessages["slow"]
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := svc.Store.List(context.Background(), dlqops.Filter{})
		effects := res.get(func(r *toResults) int { return len(r.effects) })
		okLetters := 0
		for _, r := range l {
			if r.Metadata["kind"] == "ok" {
				okLetters++ // failed during the outage, before the breaker opened
			}
		}
		if err == nil && len(l) == letters+okLetters && effects+okLetters == n {
			return
		}
		if time.Now().After(deadline) {
			res.mu.Lock()
			defer res.mu.Unlock()
			for _, r := range l {
				t.Logf("letter %s %s attempts %d: %s: %s", r.Metadata["kind"], r.Metadata["order_id"], r.Attempts, r.ErrorClass, r.Error)
			}
			t.Fatalf("after 30 s: %d letters (%v), %d ok effects, want %d; router %d ok, %d deferred, %d failed, %d calls",
				len(l), err, effects+okLetters, n, res.ok, res.deferred, res.failed, res.call)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// toSum adds up the points of smPoints whose key starts with prefix.
func toSum(pts map[string]int64, prefix string) int64 {
	var n int64
	for k, v := range pts {
		if k == prefix || strings.HasPrefix(k, prefix+" ") {
			n += v
		}
	}
	return n
}

// toCheck compares the metrics and spans with what the router saw and
// what the dead-letter store holds.
func toCheck(t *testing.T, svc *service.Service, reader *sdkmetric.ManualReader, sr *tracetest.SpanRecorder, res *toResults, rerun int) {
	t.Helper()
	pts := smPoints(t, reader)
	res.mu.Lock()
	defer res.mu.Unlock()
	letters, err := svc.Store.List(context.Background(), dlqops.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	twice := 0
	for _, n := range res.effects {
		if n > 1 {
			twice++
		}
	}
	t.Logf("router: %d ok, %d deferred, %d canceled, %d failed; %d handler calls; %d letters; %d orders with their effect more than once",
		res.ok, res.deferred, res.canceled, res.failed, res.call, len(letters), twice)
	t.Logf("metrics: %v", pts)
	dead := toSum(pts, "levee.handler.messages dead_lettered")
	for name, want := range map[string]int64{
		"acked + dead_lettered": int64(res.ok), "deferred": int64(res.deferred),
		"canceled": int64(res.canceled), "nacked": int64(res.failed),
	} {
		var got, hist int64
		if name == "acked + dead_lettered" {
			got = toSum(pts, "levee.handler.messages acked") + dead
			hist = toSum(pts, "levee.handler.duration acked") + toSum(pts, "levee.handler.duration dead_lettered")
		} else {
			got = toSum(pts, "levee.handler.messages "+name)
			hist = toSum(pts, "levee.handler.duration "+name)
		}
		if got != want {
			t.Errorf("levee.handler.messages %s: %d, the router saw %d", name, got, want)
		}
		if hist != got {
			t.Errorf("levee.handler.duration %s: %d samples, levee.handler.messages %d", name, hist, got)
		}
	}
	exact := map[string]int64{
		"levee.handler.messages dead_lettered permanent": int64(toMessages["poison"]),
		"levee.handler.messages dead_lettered panic":     int64(toMessages["panic"]),
		"levee.handler.messages dead_lettered exhausted": int64(len(letters) - toMessages["poison"] - toMessages["panic"]),
		"levee.dlq.dead_letters":                         int64(len(letters)),
		"levee.dlq.monitor.recorded new":                 int64(len(letters)),
		"levee.dedup.duplicates":                         int64(toMessages["dup"] - rerun),
		"levee.breaker.paused":                           0,
		"levee.priority.queue.depth":                     0,
		"levee.priority.slots.in_use":                    0,
		"levee.fleet.degraded":                           0,
	}
	for k, w := range exact {
		if got := toSum(pts, k); got != w {
			t.Errorf("%s: got %d, want %d", k, got, w)
		}
	}
	for _, k := range []string{"levee.dedup.store.errors", "levee.fleet.fallbacks", "levee.breaker.transitions open"} {
		if toSum(pts, k) == 0 {
			t.Errorf("%s: 0, want the outage counted", k)
		}
	}
	spans := map[string]int64{}
	for _, s := range sr.Ended() {
		if s.SpanKind().String() != "consumer" || !strings.HasPrefix(s.Name(), "process ") {
			continue
		}
		for _, kv := range s.Attributes() {
			if kv.Key == tracing.AttrOutcome {
				spans[kv.Value.AsString()]++
			}
		}
	}
	for _, o := range []string{"acked", "nacked", "deferred", "canceled", "dead_lettered"} {
		if got := toSum(pts, "levee.handler.messages "+o); spans[o] != got {
			t.Errorf("consumer spans with levee.outcome=%s: %d, levee.handler.messages: %d", o, spans[o], got)
		}
	}
}
